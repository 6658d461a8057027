"""A real Home Assistant for the demo (``scripts/develop``) and the end-to-end tests.

Everything goes through Home Assistant's own interfaces: the requirements of the integrations it
will load are read from their manifests (and installed by the calling script under Home
Assistant's package constraints), onboarding and the config entry for the emulator are done over
its HTTP API, with the real config flow.

    python scripts/demo.py requirements [--missing]   # pip requirement lines, one per line
    python scripts/demo.py configure DIR [--port N]   # DIR/configuration.yaml, unless it exists
    python scripts/demo.py hass -c DIR [HASS OPTIONS]   # Home Assistant with this integration
    python scripts/demo.py provision --config DIR --url URL [--emulator HOST:PORT]... \
        [--serial PATH]... [--pid PID]
        # finish onboarding (or log in) and add each emulator's channel (and serial port) unless
        # it is added

The end-to-end tests (``tests/e2e``) import this module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "resol_vbus"
DEMO_NAME = "Demo"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo1234"  # noqa: S105 - the documented login of a local demo
# The integrations this configuration names besides Home Assistant's defaults: what the README
# talks about (history, the logbook and the Energy dashboard, on the recorder's database).
CONFIGURED = ("http", "logger", "recorder", "history", "logbook", "energy")

# Home Assistant 2026.10 and later move this block into their storage (see settle_http).
HTTP_BLOCK = """\
http:
  server_host: 127.0.0.1
  server_port: {port}
"""
CONFIGURATION = """\
# Written by scripts/demo.py for the RESOL VBus demo. Deliberately small: no default_config,
# so only Home Assistant's default integrations and the ones below are loaded.
homeassistant:
  name: RESOL VBus demo
  country: DE # any; without one Home Assistant raises a repair issue asking for it
{http}logger:
  default: warning
  logs:
    homeassistant.setup: info
    custom_components.resol_vbus: debug
# The database (home-assistant_v2.db) and what the README shows on it: history graphs, the
# logbook and the Energy dashboard.
recorder:
history:
logbook:
energy:
"""


# -- requirements ---------------------------------------------------------------------------


def _manifest(domain: str) -> dict[str, Any] | None:
    import homeassistant.components  # noqa: PLC0415 - only this command needs Home Assistant

    for base in (Path(homeassistant.components.__file__).parent, ROOT / "custom_components"):
        path = base / domain / "manifest.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def requirements() -> list[str]:
    """The requirements of every integration the demo configuration makes Home Assistant load.

    That is the core and default integrations of Home Assistant's bootstrap, the configured ones
    and this integration, with their dependencies and after-dependencies, recursively: the
    requirements Home Assistant itself would install for them (an integration may import an
    after-dependency that is not set up, as analytics imports hassio and with it
    aiohasupervisor).
    """
    from homeassistant import bootstrap  # noqa: PLC0415

    pending = [
        *bootstrap.CORE_INTEGRATIONS,
        *bootstrap.DEFAULT_INTEGRATIONS,
        *CONFIGURED,
        DOMAIN,
    ]
    seen: set[str] = set()
    found: list[str] = []
    while pending:
        domain = pending.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = _manifest(domain)
        if manifest is None:
            continue
        pending.extend(manifest.get("dependencies", []))
        pending.extend(manifest.get("after_dependencies", []))
        found.extend(req for req in manifest.get("requirements", []) if req not in found)
    return sorted(found, key=str.casefold)


def installed(requirement: str) -> bool:
    """Whether a version of ``requirement`` (``name==1.2``, ``name>=1.1`` …) is installed."""
    from packaging.requirements import Requirement  # noqa: PLC0415 - Home Assistant brings it

    wanted = Requirement(requirement)
    try:
        have = version(wanted.name)
    except PackageNotFoundError:
        return False
    return wanted.specifier.contains(have, prereleases=True)


# -- configuration --------------------------------------------------------------------------


# Onboarding's location step (core_config) would also start Met.no, Radio Browser, Google
# Translate and Shopping list, which need packages and the internet and have nothing to do with
# the demo. A fresh configuration gets the onboarding store in its first format instead: Home
# Assistant's own migration marks every later step done, so only the user step is left, and that
# goes through the API as in the frontend's onboarding.
ONBOARDING_STORE = {"version": 1, "minor_version": 1, "key": "onboarding", "data": {"done": []}}


def configure(config_dir: Path, port: int) -> bool:
    """Set up a new ``config_dir`` (HTTP on ``port``); whether it was new (else nothing changes).

    It gets ``configuration.yaml`` and the onboarding store (see ``ONBOARDING_STORE``).
    """
    path = config_dir / "configuration.yaml"
    if path.exists():
        return False
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    onboarding = storage / "onboarding"
    if not onboarding.exists():
        onboarding.write_text(json.dumps(ONBOARDING_STORE), encoding="utf-8")
    http = HTTP_BLOCK.format(port=port)
    path.write_text(CONFIGURATION.format(http=http), encoding="utf-8")
    return True


# -- the HTTP API -----------------------------------------------------------------------------


class HomeAssistantError(Exception):
    """Home Assistant answered something unexpected.

    ``status`` is the HTTP status, ``code`` the WebSocket API's error code, if any.
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        """Keep the HTTP status or the error code."""
        super().__init__(message)
        self.status = status
        self.code = code


class HassClient:
    """A client of a running Home Assistant's HTTP API (REST, auth and onboarding)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        """Talk to the Home Assistant at ``url`` (e.g. ``http://127.0.0.1:8123``)."""
        self.session = session
        self.url = url.rstrip("/")
        self.client_id = f"{self.url}/"
        self.tokens: dict[str, Any] = {}

    async def send(self, method: str, path: str, **kwargs: Any) -> str:
        """``method path`` (with the access token once logged in); the answer's text."""
        headers = {}
        if self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens['access_token']}"
        async with self.session.request(
            method, self.url + path, headers=headers, **kwargs
        ) as response:
            text = await response.text()
            if response.status >= HTTPStatus.BAD_REQUEST:
                msg = f"{method} {path}: HTTP {response.status} {text[:300]}"
                raise HomeAssistantError(msg, response.status)
            return text

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method path`` (see :meth:`send`); the JSON answer (``None`` when empty)."""
        text = await self.send(method, path, **kwargs)
        return json.loads(text) if text else None

    async def command(self, message: dict[str, Any]) -> Any:
        """Send one WebSocket API command (e.g. ``{"type": "http/config"}``); its result."""
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.tokens["access_token"]})
            if (answer := await ws.receive_json())["type"] != "auth_ok":
                msg = f"WebSocket API: {answer}"
                raise HomeAssistantError(msg)
            await ws.send_json({"id": 1, **message})
            answer = await ws.receive_json()
        if not answer["success"]:
            error = answer["error"]
            msg = f"{message['type']}: {error['message']}"
            raise HomeAssistantError(msg, code=error["code"])
        return answer["result"]

    async def wait_running(
        self,
        timeout: float = 300.0,  # noqa: ASYNC109
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """Wait until the HTTP server answers and (once logged in) the core is running.

        ``alive`` tells whether the Home Assistant process still runs (no point waiting longer).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.tokens:
                    if (await self.request("GET", "/api/core/state"))["state"] == "RUNNING":
                        return
                else:  # without a login (which would count as a failed one): any answer
                    await self.request("GET", "/api/onboarding")
                    return
            except aiohttp.ClientError:
                pass
            except HomeAssistantError:
                if not self.tokens:
                    return  # up, and onboarded (its API is gone)

            if not alive():
                msg = "Home Assistant exited"
                raise HomeAssistantError(msg)
            if time.monotonic() > deadline:
                msg = f"Home Assistant at {self.url} did not come up in {timeout:.0f} s"
                raise HomeAssistantError(msg)
            await asyncio.sleep(0.5)

    async def _token(self, code: str) -> None:
        data = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id}
        self.tokens = {}
        self.tokens = await self.request("POST", "/auth/token", data=data)

    async def onboard_or_login(self, username: str, password: str, name: str = DEMO_NAME) -> bool:
        """Finish onboarding with this user, or log in when it is done; whether it onboarded."""
        try:
            status = await self.request("GET", "/api/onboarding")
        except HomeAssistantError as err:
            if err.status != HTTPStatus.NOT_FOUND:
                raise
            status = []  # onboarded: its API is gone
        steps = {step["step"]: step["done"] for step in status}
        if steps.get("user", True):
            await self.login(username, password)
            onboarded = False
        else:
            answer = await self.request(
                "POST",
                "/api/onboarding/users",
                json={
                    "client_id": self.client_id,
                    "name": name,
                    "username": username,
                    "password": password,
                    "language": "en",
                },
            )
            await self._token(answer["auth_code"])
            onboarded = True
        # The remaining steps, as the frontend's onboarding wizard posts them.
        payloads = {
            "core_config": {},
            "analytics": {},
            "integration": {
                "client_id": self.client_id,
                "redirect_uri": f"{self.url}/?auth_callback=1",
            },
        }
        for step, done in steps.items():
            if not done and step in payloads:
                await self.request("POST", f"/api/onboarding/{step}", json=payloads[step])
        return onboarded

    async def login(self, username: str, password: str) -> None:
        """Log in with the login flow the frontend uses."""
        self.tokens = {}
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.url}/?auth_callback=1",
            },
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json={"client_id": self.client_id, "username": username, "password": password},
        )
        if result.get("type") != "create_entry":
            msg = f"login as {username!r} failed: {result.get('errors') or result}"
            raise HomeAssistantError(msg)
        await self._token(result["result"])

    async def settle_http(self, config_dir: Path) -> None:
        """Keep the HTTP settings of ``configuration.yaml`` on Home Assistant 2026.10 and later.

        Those take the ``http:`` block into their storage on the first start, as a trial that
        they revert (restarting) after 5 minutes unless it is confirmed, and ask (a repair issue)
        for the block to be removed. Do what the confirmation dialog and the repair ask: confirm,
        remove the block (when it is as written), ignore the repair until the next start clears
        it. Earlier releases read the block on every start: nothing to do.
        """
        try:
            http = await self.command({"type": "http/config"})
        except HomeAssistantError as err:
            if err.code == "unknown_command":
                return
            raise
        if http["pending"] is not None and http["pending"].get("error") is None:
            await self.command({"type": "http/config/promote"})
        path = config_dir / "configuration.yaml"
        text = path.read_text(encoding="utf-8")
        block = HTTP_BLOCK.format(port=(http["pending"] or http["stable"])["server_port"])
        if block in text:
            path.write_text(text.replace(block, "", 1), encoding="utf-8")
        with contextlib.suppress(HomeAssistantError):  # no such issue: fine
            await self.command(
                {
                    "type": "repairs/ignore_issue",
                    "domain": "http",
                    "issue_id": "deprecated_yaml",
                    "ignore": True,
                }
            )

    async def entries(self, domain: str = DOMAIN) -> list[dict[str, Any]]:
        """The config entries of ``domain``."""
        return await self.request("GET", f"/api/config/config_entries/entry?domain={domain}")

    async def flow(self, *steps: dict[str, Any], handler: str = DOMAIN) -> dict[str, Any]:
        """Start a config flow and answer its steps with ``steps``; its last result."""
        result = await self.request(
            "POST", "/api/config/config_entries/flow", json={"handler": handler}
        )
        return await self.answer(result, *steps)

    async def answer(self, result: dict[str, Any], *steps: dict[str, Any]) -> dict[str, Any]:
        """Answer the steps of the flow at ``result`` with ``steps``; its last result."""
        for answer in steps:
            if result["type"] not in ("form", "menu"):
                break
            result = await self.request(
                "POST", f"/api/config/config_entries/flow/{result['flow_id']}", json=answer
            )
        return result

    async def add_local_device(
        self,
        host: str,
        port: int,
        password: str = "vbus",  # noqa: S107 - the devices' factory default
        channel: int | None = 1,
    ) -> dict[str, Any] | None:
        """Add a local device (and a DL3 channel) with the integration's config flow.

        The flow's result; ``None`` when the flow says that device (channel) is already added.
        """
        result = await self.flow(
            {"next_step_id": "local"}, {"host": host, "port": port, "password": password}
        )
        if result["type"] == "abort" and result["reason"] == "already_configured":
            return None
        if channel is not None and result.get("step_id") == "channel":
            if str(channel) not in _options(result, "channel"):  # taken by an entry
                await self.send("DELETE", f"/api/config/config_entries/flow/{result['flow_id']}")
                return None
            result = await self.answer(result, {"channel": str(channel)})
        if result["type"] != "create_entry":
            msg = f"the config flow did not create an entry: {result}"
            raise HomeAssistantError(msg)
        return result

    async def add_serial_device(self, path: str) -> dict[str, Any] | None:
        """Add a serial port with the integration's config flow (typed in, as a user may).

        The flow's result; ``None`` when the flow says that port is already added.
        """
        result = await self.flow({"next_step_id": "serial"}, {"device": path})
        if result["type"] == "abort" and result["reason"] == "already_configured":
            return None
        if result["type"] != "create_entry":
            msg = f"the config flow did not create an entry: {result}"
            raise HomeAssistantError(msg)
        return result

    async def states(self) -> dict[str, dict[str, Any]]:
        """All states by entity id."""
        return {state["entity_id"]: state for state in await self.request("GET", "/api/states")}

    async def template(self, template: str) -> str:
        """Render a template."""
        return await self.send("POST", "/api/template", json={"template": template})


def _options(form: dict[str, Any], name: str) -> list[str]:
    """The values a form's select field ``name`` offers (as the REST API serializes them)."""
    for field in form.get("data_schema") or []:
        if field.get("name") == name:
            options = field.get("selector", {}).get("select", {}).get("options", [])
            return [option["value"] if isinstance(option, dict) else option for option in options]
    return []


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def provision(
    config_dir: Path,
    url: str,
    emulators: list[tuple[str, int]],
    channel: int,
    *,
    pid: int | None = None,
    serial: list[str] | None = None,
) -> None:
    """Onboard (or log in) as the demo user; add each emulator's channel unless it is added.

    ``serial``: serial ports (an emulator's pseudo-terminal) to add as well.
    """
    async with aiohttp.ClientSession() as session:
        ha = HassClient(session, url)
        await ha.wait_running(alive=lambda: _pid_alive(pid))
        if await ha.onboard_or_login(DEMO_USER, DEMO_PASSWORD):
            print(f"==> Onboarding done: user {DEMO_USER!r}, password {DEMO_PASSWORD!r}")
        await ha.wait_running(alive=lambda: _pid_alive(pid))
        await ha.settle_http(config_dir)
        serial = serial or []
        if len(entries := await ha.entries()) >= len(emulators) + len(serial):
            print(f"==> Config entries already there: {', '.join(e['title'] for e in entries)}")
            return
        for path in serial:
            print(f"==> Adding the serial port {path} (the config flow waits for data)")
            result = await ha.add_serial_device(path)
            print(
                f"==> Config entry created: {result['title']}"
                if result
                else f"==> {path} is already added"
            )
        for host, port in emulators:
            print(f"==> Adding the emulator at {host}:{port} (the config flow waits for data)")
            result = await ha.add_local_device(host, port, channel=channel)
            if result is None:
                print(f"==> Channel {channel} of {host}:{port} is already added")
            else:
                print(f"==> Config entry created: {result['title']}")


def _address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``--emulator``)."""
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def run_hass(args: list[str]) -> int:
    """Run Home Assistant (``hass ARGS``) with this repository's ``custom_components`` importable.

    Home Assistant 2026.2 refuses Python < 3.13.2, but it runs on 3.13.0 and 3.13.1 (the oldest
    test lane uses them, see scripts/_venv.sh): on those its version check is skipped.
    """
    from homeassistant import __main__ as hass_main  # noqa: PLC0415

    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)  # not this folder's scripts as top-level modules
    sys.path.insert(0, str(ROOT))
    required = hass_main.REQUIRED_PYTHON_VER
    if (3, 13) <= sys.version_info[:3] < required:
        print(
            f"Note: Home Assistant asks for Python {'.'.join(map(str, required))}; "
            f"running on {sys.version.split()[0]} anyway (as the oldest test lane does)",
            file=sys.stderr,
        )
        hass_main.validate_python = lambda: None
    sys.argv = ["hass", *args]
    return hass_main.main()


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docs)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hass"]:  # everything after it belongs to hass
        return run_hass(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    reqs = commands.add_parser("requirements", help="requirements of the loaded integrations")
    reqs.add_argument("--missing", action="store_true", help="only those not installed")
    conf = commands.add_parser("configure", help="write configuration.yaml unless it exists")
    conf.add_argument("dir", type=Path)
    conf.add_argument("--port", type=int, default=8123)
    prov = commands.add_parser("provision", help="onboarding and the emulator's config entry")
    prov.add_argument("--config", type=Path, default=Path("config"), help="its configuration")
    prov.add_argument("--url", default="http://127.0.0.1:8123")
    prov.add_argument(
        "--emulator",
        type=_address,
        action="append",
        metavar="HOST:PORT",
        help="an emulator to add (repeatable; default 127.0.0.1:7053)",
    )
    prov.add_argument("--channel", type=int, default=1)
    prov.add_argument(
        "--serial", action="append", metavar="PATH", help="a serial port to add (repeatable)"
    )
    prov.add_argument("--pid", type=int, help="process id of Home Assistant (stop if it exits)")
    commands.add_parser("hass", help="run Home Assistant with this integration (hass options)")
    args = parser.parse_args(argv)
    if args.command == "requirements":
        for requirement in requirements():
            if not (args.missing and installed(requirement)):
                print(requirement)
    elif args.command == "configure":
        if configure(args.dir, args.port):
            print(f"==> Wrote {args.dir / 'configuration.yaml'}")
    else:
        try:
            emulators = args.emulator or ([] if args.serial else [("127.0.0.1", 7053)])
            asyncio.run(
                provision(
                    args.config,
                    args.url,
                    emulators,
                    args.channel,
                    pid=args.pid,
                    serial=args.serial,
                )
            )
        except HomeAssistantError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
