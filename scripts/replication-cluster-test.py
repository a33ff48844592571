#!/usr/bin/env python3
"""Three `blockd serve` processes, each in its own network namespace (veth pairs on one
bridge), replicate a volume while a seeded random loop kills, partitions and fails over
servers; qemu-io and qemu-img (QEMU's iSCSI initiator) do every read and write, the admin
API every role change (docs/REPLICATION.md, "Testing").

Per configuration (RF 2 sync_all, RF 3 sync_quorum, RF 3 sync_all, RF 2 best_effort) each round writes
batches of 64 KiB writes, each batch ending in a flush, then injects one fault while a batch
is in flight: kill -9 of the primary, a partition of the primary (the process lives on, cut
off), kill -9 of a replica, or a partition of a replica. A lost primary is replaced the way
a control plane would: after its lease ran out, the reachable replica with the highest
durable LSN is promoted at epoch + 1, and it must cover the committed LSN the old primary
last reported. The checker asserts:
  - every flushed write is readable after every promotion (the whole volume is read back
    through qemu-img and compared per 4 KiB block with a model: a block holds its last
    flushed value, or a value of a write whose flush did not succeed);
  - no two primaries acknowledge writes in one epoch, and a stale primary's writes are
    refused: a writer beside a partitioned primary (in its namespace) gets no flush
    acknowledged that it started after its lease ran out, and the old primary refuses
    writes once the partition heals (it learns the newer epoch and fences itself);
  - a strict mode never runs local-only: with a replica gone a sync_all flush fails, and
    succeeds again once the replica is back; sync_quorum RF 3 keeps flushing with one
    replica gone;
  - no blockd log shows a crash.

  scripts/replication-cluster-test.py [--rounds N] [--seed S] [--network netns|loopback]
Environment: BLOCKD (default .build/release/blockd), CLUSTER_ROUNDS (rounds per
configuration, default 2; the long form is 45, over 100 failovers), CLUSTER_SEED, WORK_DIR.
`--network loopback` runs the same loop on 127.0.0.1 without partitions (no root needed).
Needs root for `ip netns`."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

IQN = "iqn.2026-11.org.swift-block"
BLOCK_BYTES = 4096
SLOT_BYTES = 64 * 1024
VOLUME_BYTES = 32 * 1024 * 1024
LEASE_MS = 2000
COMMAND_TIMEOUT_S = 60
# A batch a fault cuts off: QEMU retries a lost connection for ever, so it ends by timeout.
FAULTED_TIMEOUT_S = 10
CONFIGURATIONS = [(2, "sync_all"), (3, "sync_quorum"), (3, "sync_all"), (2, "best_effort")]


class CheckFailed(Exception):
    pass


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(command, check=True, timeout=COMMAND_TIMEOUT_S):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


class Network:
    """Namespaces and veth pairs on a bridge (netns), or plain loopback. `partition(name)`
    takes the server's link down: its process lives on, cut off from everyone."""

    def __init__(self, kind, names):
        self.kind = kind
        self.names = names
        self.tag = f"bk{os.getpid() % 10000}"
        self.subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
        self.created = []
        if kind == "netns":
            self._build()

    def _build(self):
        bridge = f"{self.tag}br"
        run(["ip", "link", "add", bridge, "type", "bridge"])
        self.created.append(("link", bridge))
        run(["ip", "addr", "add", f"{self.subnet}.1/24", "dev", bridge])
        run(["ip", "link", "set", bridge, "up"])
        for index, name in enumerate(self.names):
            namespace, host, inner = self.namespace(name), self.host_link(name), f"{self.tag}{name}n"
            run(["ip", "netns", "add", namespace])
            self.created.append(("netns", namespace))
            run(["ip", "link", "add", host, "type", "veth", "peer", "name", inner])
            self.created.append(("link", host))
            run(["ip", "link", "set", inner, "netns", namespace])
            run(["ip", "link", "set", host, "master", bridge])
            run(["ip", "link", "set", host, "up"])
            run(["ip", "-n", namespace, "addr", "add", f"{self.address(name)}/24", "dev", inner])
            run(["ip", "-n", namespace, "link", "set", inner, "up"])
            run(["ip", "-n", namespace, "link", "set", "lo", "up"])

    def namespace(self, name):
        return f"{self.tag}-{name}"

    def host_link(self, name):
        return f"{self.tag}{name}h"

    def address(self, name):
        return "127.0.0.1" if self.kind == "loopback" else f"{self.subnet}.{11 + self.names.index(name)}"

    def inside(self, name, command):
        return command if self.kind == "loopback" else ["ip", "netns", "exec", self.namespace(name)] + command

    def partition(self, name, cut):
        assert self.kind == "netns"
        run(["ip", "link", "set", self.host_link(name), "down" if cut else "up"])

    def destroy(self):
        for kind, name in reversed(self.created):
            if kind == "netns":
                run(["ip", "netns", "del", name], check=False)
            else:
                run(["ip", "link", "del", name], check=False)


class Server:
    def __init__(self, name, network, blockd, work, secret, ports):
        self.name, self.network, self.blockd = name, network, blockd
        self.data = os.path.join(work, name)
        self.log_path = os.path.join(work, f"{name}.log")
        self.secret = secret
        self.address = network.address(name)
        self.portal_port, self.admin_port, self.replication_port = ports
        self.process = None
        self.partitioned = False
        os.makedirs(self.data, exist_ok=True)

    @property
    def listener(self):
        return f"{self.address}:{self.replication_port}"

    def url(self, volume):
        return f"iscsi://{self.address}:{self.portal_port}/{IQN}:{volume}/0"

    def start(self):
        command = self.network.inside(self.name, [
            self.blockd, "serve", "--data-dir", self.data,
            "--portal", f"{self.address}:{self.portal_port}",
            "--admin", f"{self.address}:{self.admin_port}",
            "--replication-listen", self.listener, "--replication-secret-file", self.secret,
            "--log-level", "info"])
        with open(self.log_path, "a") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=output, stdin=subprocess.DEVNULL)
        for _ in range(200):
            if self.api("GET", "/v1/volumes", timeout=1)[0] == 200:
                return
            time.sleep(0.1)
        raise CheckFailed(f"server {self.name} did not start")

    def kill(self):
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None

    @property
    def alive(self):
        return self.process is not None

    def api(self, method, path, body=None, timeout=10):
        """(status, parsed body) or (None, reason) when the server cannot be reached."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://{self.address}:{self.admin_port}{path}", data=data,
                                         method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                text = reply.read().decode()
                return reply.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except (OSError, ValueError) as error:
            return None, str(error)


def free_ports(count):
    import socket
    ports = []
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


class Model:
    """What each 4 KiB block may hold: its last flushed value, plus the values of writes
    since then whose flush did not succeed (they may or may not have landed)."""

    def __init__(self, strict):
        # best_effort (not strict) promises a flush on the primary's log only: a promotion
        # may lose what it acknowledged, so there every written value stays possible.
        self.strict = strict
        blocks = VOLUME_BYTES // BLOCK_BYTES
        self.flushed = [0] * blocks
        self.unsure = [set() for _ in range(blocks)]

    def blocks_of(self, slot):
        first = slot * SLOT_BYTES // BLOCK_BYTES
        return range(first, first + SLOT_BYTES // BLOCK_BYTES)

    def record(self, writes, flushed):
        for slot, value in writes:
            for block in self.blocks_of(slot):
                if flushed and self.strict:
                    self.flushed[block] = value
                    self.unsure[block].clear()
                else:
                    self.unsure[block].add(value)

    def check(self, image, where):
        """Compares a read-back image; returns the observed values (one per block)."""
        observed = []
        problems = []
        for block in range(len(self.flushed)):
            data = image[block * BLOCK_BYTES:(block + 1) * BLOCK_BYTES]
            value = data[0]
            allowed = {self.flushed[block]} | self.unsure[block]
            if data.count(value) != len(data) or value not in allowed:
                problems.append(f"block {block}: read {value} (uniform: {data.count(value) == len(data)}), "
                                f"flushed {self.flushed[block]}, unflushed {sorted(self.unsure[block])}")
            observed.append(value)
        if problems:
            raise CheckFailed(f"{where}: {len(problems)} block(s) wrong, first: {problems[:3]}")
        return observed

    def settle(self, observed):
        """After a flush that followed a read-back, what was read is durable everywhere."""
        if not self.strict:
            return
        for block, value in enumerate(observed):
            self.flushed[block] = value
            self.unsure[block].clear()


class Cluster:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.random = random.Random(args.seed)
        self.names = ["A", "B", "C"]
        self.network = Network(args.network, self.names)
        self.secret = os.path.join(work, "secret")
        with open(self.secret, "wb") as output:
            output.write(os.urandom(32))
        os.chmod(self.secret, 0o600)
        ports = free_ports(3 * len(self.names)) if args.network == "loopback" else [3260, 9260, 3270] * 3
        self.servers = {name: Server(name, self.network, args.blockd, work, self.secret, ports[3 * i:3 * i + 3])
                        for i, name in enumerate(self.names)}
        self.lock = threading.Lock()
        self.acks = []  # (server, epoch, started, ended): every acknowledged flush
        self.failovers = 0
        self.renewing = None

    # -- roles -----------------------------------------------------------------------

    def assign(self, server, role, epoch, replicas=None):
        body = {"role": role, "epoch": epoch}
        if role == "primary":
            body["leaseMs"] = LEASE_MS
            body["replicas"] = [self.servers[name].listener for name in replicas]
        status, reply = server.api("PUT", f"/v1/volumes/{self.volume}/role", body)
        if status != 200:
            raise CheckFailed(f"{server.name}: {role} at epoch {epoch}: {status} {reply}")

    def status(self, server):
        status, reply = server.api("GET", f"/v1/volumes/{self.volume}", timeout=3)
        return reply if status == 200 else None

    def renew_loop(self, stop):
        """The control plane's heartbeat: renews the primary's lease every third of it and
        notes the committed LSN it reports."""
        while not stop.wait(LEASE_MS / 3000):
            with self.lock:
                primary = self.servers[self.primary]
                if not primary.alive or primary.partitioned:
                    continue
                body = {"role": "primary", "epoch": self.epoch, "leaseMs": LEASE_MS,
                        "replicas": [self.servers[name].listener for name in self.replicas]}
                primary.api("PUT", f"/v1/volumes/{self.volume}/role", body, timeout=2)
                status = self.status(primary)
                if status and status["epoch"] == self.epoch:
                    self.committed = max(self.committed, status["lsn"]["committed"])

    def wait_in_sync(self, replicas, timeout_s=60):
        deadline = time.monotonic() + timeout_s
        primary = self.servers[self.primary]
        while time.monotonic() < deadline:
            status = self.status(primary)
            if status:
                states = {entry["address"]: entry["state"] for entry in status["replicas"]}
                if all(states.get(self.servers[name].listener) == "inSync" for name in replicas):
                    return
            time.sleep(0.1)
        raise CheckFailed(f"replicas {replicas} of {self.primary} not in sync: {self.status(primary)}")

    def in_sync_logged(self, replicas):
        started = time.monotonic()
        self.wait_in_sync(replicas)
        if self.args.verbose:
            log(f"    in sync after {time.monotonic() - started:.1f} s")

    # -- I/O through qemu ------------------------------------------------------------

    def write_batch(self, server, writes, beside=None, timeout_s=COMMAND_TIMEOUT_S):
        """qemu-io writes each (slot, value) then flushes; True when the flush succeeded.
        `beside`: run qemu-io inside that server's namespace (a client on its side of a
        partition)."""
        commands = []
        for slot, value in writes:
            commands += ["-c", f"write -q -P {value} {slot * SLOT_BYTES} {SLOT_BYTES}"]
        commands += ["-c", "flush"]
        # Write-back caching: the writes go out plain and the batch's one flush decides.
        command = ["qemu-io", "-f", "raw", "-t", "writeback", server.url(self.volume)] + commands
        if beside:
            command = self.network.inside(beside, command)
        started = time.monotonic()
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
            output = result.stdout + result.stderr
            ok = result.returncode == 0 and not any(word in output.lower() for word in ("error", "fail"))
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            self.acks.append((server.name, self.epoch_of[server.name], started, time.monotonic()))
        if self.args.verbose:
            log(f"    {len(writes)} write(s) + flush on {server.name}{' beside ' + beside if beside else ''}: "
                f"{'ok' if ok else 'failed'} in {time.monotonic() - started:.1f} s")
        return ok

    def random_writes(self, count):
        self.generation = self.generation % 255 + 1
        slots = self.random.sample(range(VOLUME_BYTES // SLOT_BYTES), count)
        return [(slot, self.generation) for slot in slots]

    def read_back(self, server, where):
        path = os.path.join(self.work, "image.raw")
        result = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url(self.volume), path],
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        if result.returncode != 0:
            raise CheckFailed(f"{where}: reading {server.name} back: {result.stderr.strip()}")
        with open(path, "rb") as image:
            data = image.read()
        os.unlink(path)
        if len(data) != VOLUME_BYTES:
            raise CheckFailed(f"{where}: read {len(data)} bytes back")
        return self.model.check(data, where)

    def expect_write(self, expected, where):
        writes = self.random_writes(self.random.randint(2, 8))
        ok = self.write_batch(self.servers[self.primary], writes)
        self.model.record(writes, ok)
        if ok != expected:
            raise CheckFailed(f"{where}: a flush on {self.primary} {'failed' if expected else 'succeeded'}")
        return ok

    # -- one configuration -----------------------------------------------------------

    def setup(self, replica_factor, durability):
        self.volume = f"vol-rf{replica_factor}-{durability.replace('_', '-')}"
        self.replica_factor, self.durability = replica_factor, durability
        self.model = Model(strict=durability != "best_effort")
        self.generation = 0
        self.committed = 0
        self.epoch = 1
        self.copies = self.names[:replica_factor]
        self.epoch_of = {name: 1 for name in self.copies}
        for name in self.copies:
            status, reply = self.servers[name].api("POST", "/v1/volumes", {
                "name": self.volume, "sizeBytes": VOLUME_BYTES, "durability": durability,
                "replicaFactor": replica_factor})
            if status != 201:
                raise CheckFailed(f"create on {name}: {status} {reply}")
        self.primary, self.replicas = self.copies[0], self.copies[1:]
        for name in self.replicas:
            self.assign(self.servers[name], "replica", 1)
        self.assign(self.servers[self.primary], "primary", 1, self.replicas)
        self.wait_in_sync(self.replicas)

    def promote(self, lost):
        """The control plane's failover: the reachable replica with the highest durable LSN
        becomes primary at epoch + 1; it must cover the committed LSN."""
        candidates = []
        for name in self.replicas:
            server = self.servers[name]
            status = self.status(server) if server.alive and not server.partitioned else None
            if status:
                candidates.append((status["lsn"]["durable"], name))
        if not candidates:
            raise CheckFailed(f"no replica reachable to replace {lost}")
        durable, chosen = max(candidates)
        if durable < self.committed and self.durability != "best_effort":
            raise CheckFailed(f"the best replica {chosen} is durable to {durable}, below the committed LSN "
                              f"{self.committed}: an acknowledged flush would be lost")
        with self.lock:
            self.epoch += 1
            self.failovers += 1
            others = [name for name in self.copies if name != chosen]
            for name in others:
                server = self.servers[name]
                if server.alive and not server.partitioned:
                    self.assign(server, "replica", self.epoch)
                    self.epoch_of[name] = self.epoch
            self.assign(self.servers[chosen], "primary", self.epoch, others)
            self.epoch_of[chosen] = self.epoch
            self.promoted_at = time.monotonic()
            self.primary, self.replicas = chosen, others
            self.committed = 0
        log(f"  promoted {chosen} at epoch {self.epoch} (durable {durable})")

    def restore(self, name):
        """A killed server restarts, or a partition heals; the copy rejoins as a replica."""
        server = self.servers[name]
        if server.partitioned:
            self.network.partition(name, cut=False)
            server.partitioned = False
        if not server.alive:
            server.start()
        if self.epoch_of[name] < self.epoch:
            # A stale primary: it must refuse writes before it is told the new epoch.
            if self.write_batch(server, [(0, 254)]):
                raise CheckFailed(f"the stale primary {name} (epoch {self.epoch_of[name]}) acknowledged a write")
            self.model.record([(0, 254)], False)
            with self.lock:
                self.assign(server, "replica", self.epoch)
                self.epoch_of[name] = self.epoch

    def lose(self, name, how):
        server = self.servers[name]
        if how == "kill":
            server.kill()
        else:
            self.network.partition(name, cut=True)
            server.partitioned = True

    def round(self, number):
        for _ in range(self.random.randint(1, 3)):
            self.expect_write(True, f"round {number}: with every copy in sync")
        victim_is_primary = self.random.random() < 0.6
        victim = self.primary if victim_is_primary else self.random.choice(self.replicas)
        how = "kill" if self.args.network == "loopback" or self.random.random() < 0.5 else "partition"
        log(f"round {number}: {how} {'primary' if victim_is_primary else 'replica'} {victim} (epoch {self.epoch})")
        # The fault lands while batches stream to the primary (a batch it cuts off ends by
        # timeout, or fails).
        faulted = threading.Event()
        writer = threading.Thread(target=self.stream_until, args=(self.servers[self.primary], faulted))
        writer.start()
        time.sleep(self.random.uniform(0.05, 0.5))
        lost_at = time.monotonic()
        self.lose(victim, how)
        faulted.set()
        beside = None
        if victim_is_primary and how == "partition":
            # A client on the cut-off primary's side of the partition keeps writing.
            beside = threading.Thread(target=self.write_beside, args=(victim, lost_at + LEASE_MS / 1000 + 1.5))
            beside.start()
        writer.join()
        if beside:
            beside.join()
        if victim_is_primary:
            self.fail_over(victim, how, lost_at, number)
        else:
            time.sleep(0.3)
        # With one copy gone: sync_all refuses to flush, the others go on.
        self.expect_write(self.durability != "sync_all", f"round {number}: {self.durability} with {victim} gone")
        self.restore(victim)
        self.in_sync_logged(self.replicas)
        # A flush with every copy back makes what was read durable everywhere.
        observed = self.read_back(self.servers[self.primary], f"round {number}: after {victim} rejoined")
        writes = self.random_writes(4)
        ok = self.write_batch(self.servers[self.primary], writes)
        if not ok:
            self.model.record(writes, False)
            raise CheckFailed(f"round {number}: a flush after {victim} rejoined failed")
        self.model.settle(observed)
        self.model.record(writes, True)

    def stream_until(self, server, faulted):
        """Batches to SERVER until the fault, then one more."""
        while True:
            done = faulted.is_set()
            writes = self.random_writes(self.random.randint(1, 4))
            self.model.record(writes, self.write_batch(server, writes, timeout_s=FAULTED_TIMEOUT_S))
            if done:
                return

    def write_beside(self, name, until):
        """Writes from inside NAME's namespace until `until` (monotonic seconds). None of it
        counts as flushed (that side was cut off); what is acknowledged goes to self.acks."""
        while time.monotonic() < until:
            writes = self.random_writes(2)
            self.write_batch(self.servers[name], writes, beside=name, timeout_s=FAULTED_TIMEOUT_S)
            self.model.record(writes, False)
            time.sleep(0.05)

    def fail_over(self, victim, how, lost_at, number):
        old_epoch = self.epoch
        # Like a control plane, promote only once the old primary's lease ran out.
        remaining = lost_at + LEASE_MS / 1000 + 0.2 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        self.promote(victim)
        if how == "partition":
            late = [ack for ack in self.acks if ack[0] == victim and ack[1] == old_epoch
                    and ack[2] > lost_at + LEASE_MS / 1000 + 0.1]
            if late:
                raise CheckFailed(f"round {number}: the partitioned primary {victim} acknowledged {len(late)} "
                                  f"flush(es) started after its lease ran out")
            # While it is cut off, the stale primary refuses, seen from its own side.
            writes = self.random_writes(2)
            if self.write_batch(self.servers[victim], writes, beside=victim, timeout_s=FAULTED_TIMEOUT_S):
                raise CheckFailed(f"round {number}: the partitioned old primary {victim} acknowledged a write "
                                  f"after {self.primary} was promoted at epoch {self.epoch}")
            self.model.record(writes, False)
        # Everything flushed before the loss is on the new primary.
        self.read_back(self.servers[self.primary], f"round {number}: after promoting {self.primary}")

    def check_epochs(self):
        """No two servers acknowledged flushes in one epoch."""
        by_epoch = {}
        for name, epoch, _, _ in self.acks:
            by_epoch.setdefault(epoch, set()).add(name)
        shared = {epoch: names for epoch, names in by_epoch.items() if len(names) > 1}
        if shared:
            raise CheckFailed(f"{self.volume}: two primaries acknowledged writes in one epoch: {shared}")

    def run_configuration(self, replica_factor, durability):
        log(f"== RF {replica_factor} {durability} ==")
        self.acks = []
        self.setup(replica_factor, durability)
        stop = threading.Event()
        renewer = threading.Thread(target=self.renew_loop, args=(stop,), daemon=True)
        renewer.start()
        try:
            for number in range(1, self.args.rounds + 1):
                self.round(number)
            self.check_epochs()
        finally:
            stop.set()
            renewer.join()

    def start(self):
        for server in self.servers.values():
            server.start()

    def crashes(self):
        found = []
        for server in self.servers.values():
            with open(server.log_path, errors="replace") as text:
                if any(word in line for line in text for word in ("Fatal error", "precondition", "Illegal instruction")):
                    found.append(server.name)
        return found

    def stop(self):
        for server in self.servers.values():
            if server.alive:
                server.process.send_signal(signal.SIGTERM)
        for server in self.servers.values():
            if server.alive:
                try:
                    server.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.process.kill()
                server.process = None
        self.network.destroy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("CLUSTER_ROUNDS", "2")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CLUSTER_SEED", str(int(time.time())))))
    parser.add_argument("--verbose", action="store_true", help="log every batch and its time")
    parser.add_argument("--network", choices=["netns", "loopback"], default="netns")
    parser.add_argument("--blockd", default=os.environ.get("BLOCKD", ".build/release/blockd"))
    args = parser.parse_args()
    args.blockd = os.path.abspath(args.blockd)
    if not os.access(args.blockd, os.X_OK):
        sys.exit(f"no blockd at {args.blockd} (swift build -c release --product blockd)")
    if args.network == "netns" and os.geteuid() != 0:
        sys.exit("network namespaces need root (or use --network loopback)")
    work = tempfile.mkdtemp(prefix="replication-cluster.", dir=os.environ.get("WORK_DIR", "/var/tmp"))
    log(f"seed {args.seed}, {args.rounds} round(s) per configuration, network {args.network}, work {work}")
    cluster = None
    failed = None
    try:
        cluster = Cluster(args, work)
        cluster.start()
        for replica_factor, durability in CONFIGURATIONS:
            cluster.run_configuration(replica_factor, durability)
    except CheckFailed as error:
        failed = str(error)
    finally:
        if cluster:
            cluster.stop()
            crashed = cluster.crashes()
            if crashed and not failed:
                failed = f"a blockd log shows a crash: {crashed}"
            if failed:
                for server in cluster.servers.values():
                    print(f"--- {server.name}.log (last 15 lines)")
                    with open(server.log_path, errors="replace") as text:
                        print("".join(text.readlines()[-15:]), end="")
    if failed:
        print(f"FAILED (seed {args.seed}): {failed}; the servers' logs are in {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print(f"replication cluster: {cluster.failovers} failover(s) over {len(CONFIGURATIONS)} configurations "
          f"(seed {args.seed}): every flushed write readable after each, one primary per epoch, "
          f"stale primaries refused: all checks passed")


if __name__ == "__main__":
    main()
