"""A RESOL LAN device emulator: DL2, DL3, KM2, VBus/LAN, VBus.net or a raw gateway, over real TCP.

The emulator listens for VBus-over-TCP clients, speaks the text handshake of the chosen
:class:`Personality` and then streams the VBus of a channel: live packets from a
:class:`ChannelSource` (a recording, a raw capture or synthesized values) plus the datagrams of a
:class:`ControllerSimulator` that offers the bus and answers parameterization requests. It also
answers LAN discovery (UDP query and HTTP device information) when asked to, and injects faults
(:class:`Faults`) at the connection and at the controller level.

Handshake (lines end CR LF; the client may end them with LF only):

* every non-raw personality greets with a ``+HELLO`` line at once; commands are case-sensitive;
  errors look like ``-ERROR: "Error: Unknown command"``;
* ``CONNECT <via tag>`` exists only on VBus.net and must come before ``PASS``;
* ``CHANNELLIST`` / ``CHANNEL <n>`` exist only on the DL3 and on VBus.net (which relays whatever
  channels it is given); both need a successful ``PASS``, as ``DATA`` does;
* a rejected ``PASS`` keeps the connection open; ``QUIT`` answers ``+OK: Bye`` and closes;
* ``DATA`` answers ``+OK: Data incoming...`` and the same ``write()`` carries the channel's most
  recent live packets, so the first binary bytes arrive in the same TCP segment as the line.
  From then on, bytes flow both ways; the client's frames are relayed to the other clients of
  the channel (as on a shared bus, never echoed back) and its datagrams reach the controller;
* ``Personality.RAW`` has no handshake at all (a serial-to-LAN gateway).

Serial port (:meth:`Emulator.open_serial`): a pseudo-terminal behind a stable link streams one
channel exactly as a raw client in data mode gets it, whatever the personality; frames written to
it reach the controller. :meth:`Emulator.close_serial` unplugs it (a client's read fails).

Channels: a DL3 has VBus channels 1…6 (``CHANNELLIST`` lists the configured channels ≥ 1 with
their names) and channel 0, its own inputs (address ``0053``): when no source is given for channel
0, a synthetic DL3 source is added. ``CHANNEL 0`` is accepted and ``DATA`` without ``CHANNEL``
streams channel 0, as on a real DL3. Channel 0 of a DL3 has no bus master. Other personalities
have exactly one channel; by default every emulator gets ``{1: SyntheticSource(0x7E11)}``.

Timelines start when the first client of a channel enters data mode and then run on their own
(also without clients). While another device holds the bus the controller is silent: no live
packets and no offers; when it takes the bus back (``0600`` or ``bus_timeout`` seconds without a
datagram from the master addressed to it) the next live packets go out at once — they are the
confirmation clients wait for. A reboot (:meth:`Emulator.reboot`) restarts only the logger: the
controller behind it keeps its state, including a bus held by a client that was cut off.

Controller decisions where the references are silent: requests outside the 0.4 s offer window
or from a device that does not hold the bus are ignored; the answer to ``1100`` (look-up by hash)
is ``1101`` as in the DeltaSol MX 2.08 example (``lookup_answer_command`` = ``0x0100`` gives the
other documented form); an unknown hash gets no answer (the look-up times out, as reported for
controllers without hashes); an unknown index, and any sub-index ≠ 0, gets ``4300|sub`` with the
index; ``1000`` for a value without hash answers ``0100`` with ``p32 = 0``; index 0 (changeset)
is read-only: writing it answers the changeset; every other command is ignored.

The package, one job a module (each re-exported name is listed in ``__all__``; the modules' other
names are internal to the package):

* :mod:`.sources` — channel sources: recordings, raw captures, fixed frames;
* :mod:`.synthetic` — synthesized packets of a moving controller (or DeltaSol MX system);
* :mod:`.store` — the parameter store of a controller;
* :mod:`.controller` — the controller simulator (bus master, answers to requests);
* :mod:`.faults` — the fault knobs;
* :mod:`.connection` — the personalities and the handshake of one client connection;
* :mod:`.serial` — a pseudo-terminal standing in for a serial VBus adapter;
* :mod:`.server` — the emulator: TCP server, channels and their timelines;
* :mod:`.cli` — the ``emulate`` command.
"""

from .cli import CLI_HTTP_PORT, build_emulator, cli_serial, configure_parser, serve
from .connection import Personality
from .controller import ControllerSimulator
from .faults import Faults
from .serial import SerialPort
from .server import Emulator
from .sources import (
    DL3_ADDRESS,
    ChannelSource,
    Cycle,
    LiveCaptureSource,
    RecordingSource,
    StaticSource,
)
from .store import MX_CHANGESET, ParameterStore, StoredValue
from .synthetic import NO_SENSOR, SyntheticSource, resolve_controller

__all__ = [
    "CLI_HTTP_PORT",
    "DL3_ADDRESS",
    "MX_CHANGESET",
    "NO_SENSOR",
    "ChannelSource",
    "ControllerSimulator",
    "Cycle",
    "Emulator",
    "Faults",
    "LiveCaptureSource",
    "ParameterStore",
    "Personality",
    "RecordingSource",
    "SerialPort",
    "StaticSource",
    "StoredValue",
    "SyntheticSource",
    "build_emulator",
    "cli_serial",
    "configure_parser",
    "resolve_controller",
    "serve",
]
