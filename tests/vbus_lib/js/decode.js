// Decodes packets with the reference library resol-vbus, using the given VSF file (its bundled
// one is older), and prints per packet its fields as {id, value} (value: the raw value, null when
// absent). One JSON array on one line.
//
// Usage: NODE_PATH=<dir with resol-vbus in it> node decode.js <vsf file> <packet>...
// where <packet> is <destination>_<source>_<command>_<payload>, all hexadecimal.
'use strict';

const fs = require('fs');
const { Packet, Specification, SpecificationFile } = require('resol-vbus');

const spec = new Specification({
    specificationFile: new SpecificationFile(fs.readFileSync(process.argv[2])),
});

const decoded = process.argv.slice(3).map((argument) => {
    const [destination, source, command, payload] = argument.split('_');
    const frameData = Buffer.from(payload, 'hex');
    const packet = new Packet({
        destinationAddress: parseInt(destination, 16),
        sourceAddress: parseInt(source, 16),
        command: parseInt(command, 16),
        frameCount: frameData.length / 4,
        frameData,
    });
    return spec.getPacketFieldsForHeaders([packet]).map((field) => ({
        id: field.id,
        value: field.rawValue,
    }));
});
process.stdout.write(JSON.stringify(decoded) + '\n');
