// Drives a VBus-over-TCP device (here: the project's emulator) with the reference library
// resol-vbus: wait for the bus offer, look the index of Relais_Regler_R1_Handbetrieb up by its
// hash, write 2, read it back, give the bus back. Prints one JSON line with what it saw.
//
// Usage: NODE_PATH=<dir with resol-vbus in it> node exchange.js <port> <password>
'use strict';

const { TcpConnection } = require('resol-vbus');

const R1_HANDBETRIEB_HASH = 763685401;

async function exchange(connection) {
    const offer = await connection.waitForFreeBus(10000);
    if (!offer) {
        throw new Error('no bus offer');
    }
    const address = offer.sourceAddress;
    const lookup = await connection.getValueIdByIdHash(address, R1_HANDBETRIEB_HASH);
    if (!lookup) {
        throw new Error('no answer to the look-up');
    }
    const index = lookup.valueId;
    const written = await connection.setValueById(address, index, 2);
    const read = await connection.getValueById(address, index);
    const confirmation = await connection.releaseBus(address);
    return {
        address,
        lookupCommand: lookup.command,
        index,
        written: written ? written.value : null,
        read: read ? read.value : null,
        confirmedBy: confirmation ? confirmation.sourceAddress : null,
    };
}

async function main() {
    const [port, password] = process.argv.slice(2);
    const connection = new TcpConnection({
        host: '127.0.0.1',
        port: Number(port),
        password,
        disableReconnect: true,
    });
    await connection.connect();
    try {
        console.log(JSON.stringify(await exchange(connection)));
    } finally {
        connection.disconnect();
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error(err && err.stack ? err.stack : String(err));
        process.exit(1);
    },
);
