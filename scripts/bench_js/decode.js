// Decode a raw VBus byte stream with the JavaScript reference library (npm "resol-vbus") and
// build the same JSON line per packet as `python -m ...vbus decode --json` does.
// usage: node decode.js STREAM_FILE    (NODE_PATH must reach the installed resol-vbus package)
// Prints the best of BENCH_RUNS (default 3) in-process runs as JSON; with BENCH_OUTPUT=1 it
// decodes once and writes the lines to stdout instead (the whole-process comparison).
'use strict';
const fs = require('fs');
const vbus = require('resol-vbus');

const spec = vbus.Specification.getDefaultSpecification();
const data = fs.readFileSync(process.argv[2]);

function run(write) {
    const chunk = [];
    let chunkBytes = 0;
    const connection = new vbus.Connection();
    let packets = 0;
    let outputBytes = 0;
    connection.on('packet', (packet) => {
        const fields = [];
        for (const field of spec.getPacketFieldsForHeaders([packet])) {
            if (field.rawValue == null) {
                continue;
            }
            fields.push({
                id: field.packetFieldSpec.fieldId,
                name: field.name,
                value: field.rawValue,
                unit: field.packetFieldSpec.type.unit.unitText.trim(),
            });
        }
        const device = spec.getDeviceSpecification(packet.sourceAddress, packet.destinationAddress);
        const line = JSON.stringify({
            channel: packet.channel,
            destination: packet.destinationAddress,
            source: packet.sourceAddress,
            command: packet.command,
            device: device.name,
            fields,
        });
        outputBytes += line.length + 1;
        packets += 1;
        if (write) {
            chunk.push(line);
            chunkBytes += line.length + 1;
            if (chunkBytes >= 65536) {
                fs.writeSync(1, chunk.join('\n') + '\n');
                chunk.length = 0;
                chunkBytes = 0;
            }
        }
    });
    const start = process.hrtime.bigint();
    for (let offset = 0; offset < data.length; offset += 65536) {
        connection.receive(new Date(), data.subarray(offset, offset + 65536));
    }
    if (write && chunk.length) {
        fs.writeSync(1, chunk.join('\n') + '\n');
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { packets, seconds, outputBytes };
}

if (process.env.BENCH_OUTPUT === '1') {
    run(true);
    process.exit(0);
}
const runs = Number(process.env.BENCH_RUNS || 3);
let best = null;
for (let i = 0; i < runs; i += 1) {
    const result = run(false);
    if (best === null || result.seconds < best.seconds) {
        best = result;
    }
}
process.stdout.write(JSON.stringify(best) + '\n');
