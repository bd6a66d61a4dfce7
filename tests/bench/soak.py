#!/usr/bin/python3
"""A soak run: the bridge under a steady mixed load for --minutes, its resources sampled, and
nothing lost (see README.md).

Starts mosquitto, sinch-sim and sinch-bridge the way run.py does (free loopback ports, a temp
dir), with sinch-sim also playing each send's three delivery reports back to the bridge's
webhook, signed. Then, at the same time: mqtt_load publishes JSON send commands at --rate and
times each one's outcome, and webhook_load posts signed MESSAGE_INBOUND webhooks at
--webhook-rate. Every --interval seconds it samples the bridge (RSS, open fds, threads, CPU, the
store's files, outbox and inbox depth) and the simulator's counters; a mosquitto_sub counts
everything the bridge published. At the end: every command accepted by the simulator and its
outcome published, every webhook event and every delivery report published, duplicates counted;
and a table. Exits 1 when anything was lost, a process died or fds were left behind.

Nothing reads the simulator's records of requests and callbacks while the load runs: dumping a few
thousand of them holds its only service thread for 100-300 ms, which showed as stalls of every
command in flight (p99 publish -> outcome 110 ms instead of a few)."""

import argparse
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (run.py's processes, servers and helpers)
from run import Failure, WEBHOOK_SECRET  # noqa: E402

T_LOAD_EXTRA = 90  # the load generators must have exited this long after the load's end
T_DRAIN = 120  # after that, everything in flight must be published within this
WARMUP_S = 60  # the "first minute": connection pools and caches fill up
IDLE_S = 45  # after the drain: the listener's keep-alive (30 s), then lws's close handshake
OTHER_FD_SLACK = 2  # fds that are not TCP sockets, above the start's count, taken as a leak
REPORTS = (b"QUEUED_ON_CHANNEL", b"DELIVERED", b"READ")  # what sinch-sim plays for each send

OUTCOME_ID = re.compile(rb'"id":"lat-\d+-(\d+)"')
REPORT_STATUS = re.compile(rb'"status":"([A-Z_]+)"')
INBOUND_ID = re.compile(rb'"message_id":"WL[0-9A-F]{6}(\d{18})"')


def count(counts, n):
    """counts[n] += 1, saturating; False when n is out of range."""
    if not 0 <= n < len(counts):
        return False
    if counts[n] < 255:
        counts[n] += 1
    return True


def tally(counts):
    """(distinct, duplicates) of a bytearray of counts."""
    distinct = len(counts) - counts.count(0)
    return distinct, sum(counts) - distinct


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


TCP_STATES = {"02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK",
              "0B": "CLOSING"}  # include/net/tcp_states.h


def fd_census(pid, listen_port):
    """pid's open fds by what they are: TCP connections "in" (to listen_port) and "out" (an
    outgoing one in CLOSE_WAIT too: see below), "listen", "closing" (TCP sockets in any other
    state, such as CLOSE_WAIT into the listener: the peer hung up and the fd is still open) and
    "other" (files, pipes, eventfds, unix sockets)."""
    fds = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            fds.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass  # closed meanwhile
    tcp = {}  # socket inode -> (state, local port, remote port), from pid's network namespace
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                for line in f.readlines()[1:]:
                    v = line.split()
                    tcp[v[9]] = (v[3], int(v[1].rsplit(":", 1)[1], 16),
                                 int(v[2].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    out = dict.fromkeys(("in", "out", "listen", "closing", "other"), 0)
    out["which"] = []  # the closing ones: "<state> <local port>-><remote port>"
    for target in fds:
        st, port, peer = (tcp.get(target[8:-1], (None, 0, 0)) if target.startswith("socket:[")
                          else (None, 0, 0))
        if st == "01" or (st == "08" and port != listen_port):
            # Out, CLOSE_WAIT included: curl finds a pooled connection its peer closed only
            # when it next needs one, so an idle pool can hold one; the pool's bound applies.
            out["in" if port == listen_port else "out"] += 1
        elif st and st != "0A":
            out["closing"] += 1
            out["which"].append("%s %d->%d" % (TCP_STATES.get(st, st), port, peer))
        else:
            out["listen" if st == "0A" else "other"] += 1
    return out


def slope(points):
    """Least-squares slope of [(x, y)]."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def mb(kb):
    return "%.1f MB" % (kb / 1024)


class Observer:
    """mosquitto_sub on everything the bridge publishes for the load: outcomes of the commands
    on sent and on error (by the number in their id), delivery reports (by command and status),
    inbound events (by the number in their message id). Ready once the retained bridge state
    came through, which the broker sends after subscribing to all of the topics."""

    def __init__(self, soak):
        p = soak.args.prefix
        self.lock = threading.Lock()
        self.sent = bytearray(soak.n_cmd)
        self.errors = bytearray(soak.n_cmd)
        self.reports = [bytearray(soak.n_cmd) for _ in REPORTS]
        self.reports_other = 0  # FAILED, SWITCHING_CHANNEL: none expected
        self.inbound = bytearray(soak.n_wh)
        self.unmatched = 0  # published for none of our commands or webhooks
        self.ready = threading.Event()
        self.proc = soak.spawn("observer", [run.MOSQUITTO_SUB, "-h", "127.0.0.1", "-p",
                                            str(soak.broker_port), "-q", "1", "-v",
                                            "-t", p + "/bridge/state", "-t", p + "/sent",
                                            "-t", p + "/error", "-t", p + "/delivery/#",
                                            "-t", p + "/inbound/#"],
                               stdout=subprocess.PIPE)
        self.sent_topic, self.error_topic = (p + "/sent").encode(), (p + "/error").encode()
        self.delivery, self.inbound_topic = (p + "/delivery/").encode(), (p + "/inbound/").encode()
        self.state = (p + "/bridge/state").encode()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()
        if not self.ready.wait(run.T_START):
            raise Failure("mosquitto_sub did not subscribe within %d s" % run.T_START)

    def read(self):
        for line in self.proc.stdout:
            topic, _, payload = line.partition(b" ")
            with self.lock:
                self.take(topic, payload)

    def take(self, topic, payload):
        if topic == self.state:
            self.ready.set()
            return
        if topic in (self.sent_topic, self.error_topic):
            m = OUTCOME_ID.search(payload)
            if m and count(self.sent if topic == self.sent_topic else self.errors,
                           int(m.group(1))):
                return
        elif topic.startswith(self.delivery):
            m, s = OUTCOME_ID.search(payload), REPORT_STATUS.search(payload)
            if m and s and s.group(1) in REPORTS:
                if count(self.reports[REPORTS.index(s.group(1))], int(m.group(1))):
                    return
            elif m and s:
                self.reports_other += 1
                return
        elif topic.startswith(self.inbound_topic):
            m = INBOUND_ID.search(payload)
            if m and count(self.inbound, int(m.group(1))):
                return
        self.unmatched += 1

    def unreported(self):
        """Commands on sent with none of their delivery reports published."""
        with self.lock:
            return sum(1 for n, c in enumerate(self.sent)
                       if c and not any(r[n] for r in self.reports))

    def totals(self):
        with self.lock:
            both = bytes(a | b for a, b in zip(self.sent, self.errors))
            distinct = len(both) - both.count(0)
            return {"sent": tally(self.sent), "errors": tally(self.errors)[0],
                    "outcomes": (distinct, sum(self.sent) + sum(self.errors) - distinct),
                    "reports": [tally(r) for r in self.reports],
                    "reports_other": self.reports_other, "inbound": tally(self.inbound),
                    "unmatched": self.unmatched}


class Soak(run.Bench):
    def __init__(self, args):
        super().__init__(args)
        self.seconds = args.minutes * 60
        self.n_cmd = int(args.rate * self.seconds)
        self.n_wh = int(args.webhook_rate * self.seconds)
        self.samples = []

    def delivery_results(self, metrics):
        """{result: n} of the delivery reports the bridge took, from its /metrics."""
        key = 'sinch_bridge_webhooks_total{trigger="MESSAGE_DELIVERY",result="'
        return {k[len(key):-2]: int(v) for k, v in metrics.items() if k.startswith(key)}

    # ---- samples ----

    def sample(self, phase):
        pid = self.bridge.pid
        self.check_alive("sinch-bridge", self.bridge)
        for name, p in self.procs:
            if name in ("mosquitto", "sinch-sim", "observer"):
                self.check_alive(name, p)
        t = time.monotonic()
        st = run.proc_status(pid)
        # The census before /metrics: that request's own connection, which the client has read
        # and closed while the bridge has not reached its close() yet, would count as a
        # CLOSE_WAIT into the listener (2-3% of censuses right after a GET, idle bridge).
        census = fd_census(pid, self.listen_port)
        m = self.bridge_metrics()
        data = os.path.join(self.dir, "data", "sinch-bridge.db")
        s = {"t": t - self.t0 if self.t0 else 0.0, "phase": phase, "rss": st["VmRSS"],
             "hwm": st["VmHWM"], "threads": st["Threads"],
             "census": census, "cpu": run.cpu_seconds(pid),
             "db": file_size(data), "wal": file_size(data + "-wal"),
             "outbox": m.get("sinch_bridge_outbox_depth", -1),
             "inbox": m.get("sinch_bridge_inbox_depth", -1),
             "load": float(run.loadavg().split()[0]), "mono": t,
             # Counters only: the simulator's records are not read while it serves the load.
             "sim": self.sim("GET", "/_sim/stats"),
             "pending": self.sim("GET", "/_sim/callbacks?limit=0")["pending"],
             "delivery": self.delivery_results(m)}
        s["fds"] = sum(v for k, v in s["census"].items() if k != "which")
        prev = self.samples[-1] if self.samples else None
        s["cpu_pct"] = (100 * (s["cpu"] - prev["cpu"]) / (t - prev["mono"])
                        if prev and t > prev["mono"] else 0.0)
        o = s["observed"] = self.observer.totals()
        self.samples.append(s)
        with open(os.path.join(self.dir, "samples.csv"), "a") as f:
            if len(self.samples) == 1:
                f.write("t_s,phase,rss_kb,threads,fds,tcp_in,tcp_out,tcp_closing,fds_other,"
                        "cpu_pct,db_bytes,wal_bytes,outbox,inbox,load1\n")
            c = s["census"]
            f.write("%.1f,%s,%d,%d,%d,%d,%d,%d,%d,%.1f,%d,%d,%d,%d,%.2f\n"
                    % (s["t"], phase, s["rss"], s["threads"], s["fds"], c["in"], c["out"],
                       c["closing"], c["other"], s["cpu_pct"], s["db"], s["wal"], s["outbox"],
                       s["inbox"], s["load"]))
        print("%6.0f s %-5s rss %s  fds %3d  threads %2d  cpu %3.0f%%  db %s  wal %s  outbox %d  "
              "inbox %d  load %.2f | sends %d, outcomes %d, reports %d, inbound %d"
              % (s["t"], phase, mb(s["rss"]), s["fds"], s["threads"], s["cpu_pct"],
                 mb(s["db"] / 1024), mb(s["wal"] / 1024), s["outbox"], s["inbox"], s["load"],
                 s["sim"]["sends_accepted"], o["outcomes"][0],
                 sum(r[0] for r in o["reports"]), o["inbound"][0]), flush=True)
        return s

    # ---- the run ----

    def own_cpu(self):
        """CPU seconds of the load's side: (the load generators waited for, mosquitto_sub,
        this script)."""
        t = os.times()
        return (run.children_cpu(), run.cpu_seconds(self.observer.proc.pid), t.user + t.system)

    def start_load(self):
        a = self.args
        self.times = os.path.join(self.dir, "latency-times.txt")
        # mqtt_load latency: JSON commands "lat-<pid>-<n>" with text "bench message <n>" at a
        # fixed rate, each timed from its publish to its outcome.
        self.cmd_load = self.spawn("mqtt_load", [
            a.load, "latency", "--port", str(self.broker_port), "--rate", str(a.rate),
            "--seconds", str(self.seconds), "--timeout", "60", "--times", self.times],
            stdout=subprocess.PIPE, text=True)
        # webhook_load at a fixed rate: each request timed from when it was due.
        self.wh_load = self.spawn("webhook_load", [
            a.webhook_load, "--url", "http://127.0.0.1:%d/webhooks/sinch" % self.listen_port,
            "--secret", WEBHOOK_SECRET, "--count", str(self.n_wh), "--rate", str(a.webhook_rate),
            "--connections", str(a.connections), "--timeout", str(int(self.seconds) + 60)],
            stdout=subprocess.PIPE, text=True)

    def wait_load(self):
        """Samples every --interval until both load generators have exited."""
        deadline = self.t0 + self.seconds + T_LOAD_EXTRA
        k = 1
        while self.cmd_load.poll() is None or self.wh_load.poll() is None:
            now = time.monotonic()
            if now > deadline:
                raise Failure("the load generators were still running %d s after the load's end"
                              % T_LOAD_EXTRA)
            due = self.t0 + k * self.args.interval
            if now >= due:
                self.sample("load")
                k += 1
                continue
            for name, p in self.procs:
                if name in ("sinch-bridge", "mosquitto", "sinch-sim", "observer"):
                    self.check_alive(name, p)
            time.sleep(min(0.5, max(0.0, due - now)))
        self.t_load_end = time.monotonic()
        self.cmd_out = self.cmd_load.communicate()[0]
        self.wh_out = self.wh_load.communicate()[0]
        for name, p, out in (("mqtt_load latency", self.cmd_load, self.cmd_out),
                             ("webhook_load", self.wh_load, self.wh_out)):
            if p.returncode == 2:
                raise Failure("%s failed (log: %s):\n%s" % (name, os.path.join(
                    self.dir, name.split()[0] + ".log"), out))
        self.cmd_f = run.parse_figures(self.cmd_out, "latency")
        self.wh_f = run.parse_figures(self.wh_out, "webhooks")
        if self.wh_load.returncode != 0:
            self.problems.append("webhooks: %s of %d answered 200 (%s other answers, %s none; "
                                 "webhook_load.log says which)"
                                 % (self.wh_f["ok"], self.n_wh, self.wh_f["non200"],
                                    self.wh_f["failed"]))

    def drained(self, s):
        """Everything the load caused is published, as of sample s: each accepted send has its
        three reports published or dropped as stale (the never-backwards rule)."""
        o = s["observed"]
        reports = sum(d + x for d, x in o["reports"]) + s["delivery"].get("stale_status", 0)
        return (o["outcomes"][0] >= self.n_cmd and o["inbound"][0] >= self.n_wh
                and s["pending"] == 0 and s["outbox"] == 0 and s["inbox"] == 0
                and reports >= len(REPORTS) * s["sim"]["sends_accepted"])

    def drain(self):
        """Samples every second until everything in flight is published, no progress for
        run.T_STALL s, or T_DRAIN."""
        deadline = time.monotonic() + T_DRAIN
        t_progress, progress = time.monotonic(), None
        while True:
            s = self.sample("drain")
            if self.drained(s):
                break
            o = s["observed"]
            now = (s["sim"]["sends_accepted"], o["outcomes"], o["inbound"], o["reports"],
                   s["pending"], s["outbox"], s["inbox"])
            if now != progress:
                t_progress, progress = time.monotonic(), now
            if time.monotonic() - t_progress > run.T_STALL or time.monotonic() > deadline:
                self.problems.append("not everything was published %.0f s after the load ended"
                                     % (time.monotonic() - self.t_load_end))
                break
            time.sleep(1)
        self.t_drained = time.monotonic()

    def run(self):
        a = self.args
        self.t0 = None
        self.load_before = run.loadavg()
        print("machine: %s" % run.machine())
        print("work dir: %s" % self.dir)
        print("soak: %g min, %g commands/s and %g webhooks/s, a sample every %g s"
              % (a.minutes, a.rate, a.webhook_rate, a.interval), flush=True)
        self.start_broker()
        listen = run.free_port()
        # The simulator plays each accepted send's QUEUED_ON_CHANNEL, DELIVERED and READ back
        # to the bridge's webhook, signed with its secret, 100 ms apart. Its records are not
        # read: a small ring keeps its memory flat.
        self.start_sim(record_max=1000, extra=[
            "--webhook-url", "http://127.0.0.1:%d/webhooks/sinch" % listen,
            "--webhook-secret", WEBHOOK_SECRET])
        self.start_bridge(listen_port=listen)
        self.observer = Observer(self)
        time.sleep(a.idle_wait)
        self.sample("start")
        self.others = [(name, p.pid) for name, p in self.procs if name in ("mosquitto",
                                                                           "sinch-sim")]
        self.others0 = {name: run.cpu_seconds(pid) for name, pid in self.others}
        self.machine0 = run.machine_busy()
        self.own0 = self.own_cpu()
        self.cpu0 = run.cpu_seconds(self.bridge.pid)
        self.t0 = time.monotonic()
        self.samples[0]["mono"] = self.t0  # the start sample counts as t = 0 of the load
        self.start_load()
        self.wait_load()
        self.cpu1 = run.cpu_seconds(self.bridge.pid)
        self.others1 = {name: run.cpu_seconds(pid) for name, pid in self.others}
        self.machine1 = run.machine_busy()
        self.own1 = self.own_cpu()
        self.load_samples = list(self.samples)
        self.drain()
        # Idle until the listener has closed every keep-alive connection.
        time.sleep(IDLE_S)
        self.sample("end")
        self.hwm = run.proc_status(self.bridge.pid)["VmHWM"]
        self.verify()

    # ---- the verdict ----

    def verify(self):
        end = self.samples[-1]
        o, sim, delivery = end["observed"], end["sim"], end["delivery"]
        n_cmd, n_wh = self.n_cmd, self.n_wh
        sent, sent_dup = o["sent"]
        out_distinct, out_dup = o["outcomes"]
        in_distinct, in_dup = o["inbound"]
        rep_distinct = sum(r[0] for r in o["reports"])
        rep_dup = sum(r[1] for r in o["reports"])
        stale = delivery.get("stale_status", 0)
        took = sum(v for k, v in delivery.items() if k in ("stored", "duplicate", "stale_status"))
        # A command on sent was accepted by the simulator (the bridge publishes it on its 200,
        # and the simulator's reports name it); the simulator counted every accepted send, so
        # what it counted beyond the distinct commands was sent twice. Each accepted send, a
        # duplicate too, has three reports: each must be published or dropped as stale.
        rep_expected = len(REPORTS) * sim["sends_accepted"]
        lost = {"commands (not accepted by sinch-sim)": n_cmd - sent,
                "outcomes (on neither sent nor error)": n_cmd - out_distinct,
                "webhook events (not on inbound)": n_wh - in_distinct,
                "delivery reports (neither on delivery nor stale)":
                    max(0, rep_expected - rep_distinct - rep_dup - stale)}
        total_lost = sum(lost.values())
        self.row("duration", "%.1f min of load, then %.1f s to drain"
                 % ((self.t_load_end - self.t0) / 60, self.t_drained - self.t_load_end),
                 "%d samples, every %g s (every second while draining)"
                 % (len(self.samples), self.args.interval))
        unreported = self.observer.unreported()
        self.row("outbound: commands", "%d published, %d accepted by sinch-sim, %d duplicates"
                 % (n_cmd, sent, sim["sends_accepted"] - sent),
                 "%g/s JSON commands through mosquitto; the simulator counted %d accepted, %d "
                 "refused; %d on sent without a report" % (self.args.rate, sim["sends_accepted"],
                                                           sim["sends_rejected"], unreported))
        if unreported:
            self.problems.append("%d commands on sent, but none of their reports came back: "
                                 "did sinch-sim accept them?" % unreported)
        self.row("outbound: outcomes", "%d of %d on sent/error, %d duplicates, %d errors"
                 % (out_distinct, n_cmd, out_dup, o["errors"]))
        self.row("inbound: webhooks", "%d sent, %s answered 200; %d events published, %d "
                 "duplicates" % (n_wh, self.wh_f["ok"], in_distinct, in_dup),
                 "%g/s signed MESSAGE_INBOUND, distinct ids, %d connections"
                 % (self.args.webhook_rate, self.args.connections))
        self.row("delivery reports", "%d played back, %d published, %d duplicates, %d stale"
                 % (took, rep_distinct, rep_dup, stale),
                 "%d expected (3 per accepted send); the bridge's answers by result %s; %d "
                 "still pending at sinch-sim" % (rep_expected, ", ".join(
                     "%s %d" % kv for kv in sorted(delivery.items())), end["pending"]))
        self.row("lost", "%d" % total_lost,
                 "; ".join("%s %d" % (k, v) for k, v in lost.items()))
        if total_lost:
            self.problems.append("lost: " + ", ".join("%s %d" % (k, v) for k, v in lost.items()
                                                       if v))
        if o["errors"]:
            self.problems.append("%d commands ended on the error topic" % o["errors"])
        if sim["sends_accepted"] < sent:
            self.problems.append("%d commands on sent, but sinch-sim accepted only %d sends"
                                 % (sent, sim["sends_accepted"]))
        if sent_dup:
            self.row("outcomes on sent twice", "%d" % sent_dup)
        with open(os.path.join(self.dir, "sinch-bridge.log"), errors="replace") as f:
            log = f.read().splitlines()
        self.row("bridge log", "%d lines" % len(log),
                 "BRIDGE_LOG_LEVEL=warn" + (": the first: " + log[0][:120] if log else ""))
        if o["reports_other"] or o["unmatched"]:
            self.row("published, not ours", "%d other delivery statuses, %d others"
                     % (o["reports_other"], o["unmatched"]))

        # Memory: the start, after the first minute, the end, the highest; the drift from a
        # linear fit over the load's samples after the first minute.
        start = self.samples[0]
        later = [s for s in self.load_samples if s["t"] >= WARMUP_S]
        first_min = later[0] if later else self.load_samples[-1]
        peak = max(s["rss"] for s in self.samples)
        if len(later) >= 3 and later[-1]["t"] - later[0]["t"] >= 60:
            drift = "%+.2f MB/h" % (slope([(s["t"], s["rss"]) for s in later]) * 3600 / 1024)
            fit = "fit over %d samples from %.0f s to %.0f s" % (len(later), later[0]["t"],
                                                                 later[-1]["t"])
        else:
            drift, fit = "n/a", "needs a minute of samples after the first minute"
        self.row("RSS start / 1 min / end / max", "%s / %s / %s / %s" % (
            mb(start["rss"]), mb(first_min["rss"]), mb(end["rss"]), mb(peak)),
            "VmRSS: idle before the load, at %.0f s, %d s after the drain; VmHWM %s"
            % (first_min["t"], IDLE_S, mb(self.hwm)))
        self.row("RSS drift after the first minute", drift, fit)

        # fds: connections come and go with the load and its stalls, bounded by the peers (the
        # simulator's callbacks, webhook_load) and by curl's pool. Once idle for longer than the
        # listener's keep-alive, what is left must be what the start had and that pool: no
        # connection into the listener, no TCP socket whose peer hung up (CLOSE_WAIT), at most
        # BRIDGE_SINCH_CONNECTIONS + 2 (curl's cache) + 1 (the broker) out, and no more files,
        # pipes or eventfds than at the start.
        c0, c1 = start["census"], end["census"]
        out_max = 1 + int(dict(kv.split("=", 1) for kv in self.args.env).get(
            "BRIDGE_SINCH_CONNECTIONS", 16)) + 2
        broken = (c1["in"] or c1["closing"] or c1["out"] > out_max
                  or c1["other"] > c0["other"] + OTHER_FD_SLACK)
        self.row("fds start / end / max", "%d / %d / %d" % (
            start["fds"], end["fds"], max(s["fds"] for s in self.samples)),
            "TCP connections in the samples: in %d-%d, out %d-%d; other fds %d at the start"
            % (min(s["census"]["in"] for s in self.load_samples[1:]),
               max(s["census"]["in"] for s in self.load_samples),
               min(s["census"]["out"] for s in self.load_samples[1:]),
               max(s["census"]["out"] for s in self.load_samples), c0["other"]))
        self.row("fds rule", "BROKEN" if broken else "kept",
                 "%d s after the drain: in %d (must be 0), out %d (at most %d), CLOSE_WAIT and the "
                 "like %d (must be 0), other %d (at most %d)"
                 % (IDLE_S, c1["in"], c1["out"], out_max, c1["closing"], c1["other"],
                    c0["other"] + OTHER_FD_SLACK))
        if broken:
            self.problems.append("fds left behind %d s after the drain: %s (at the start: %s)"
                                 % (IDLE_S, c1, c0))
        self.row("threads start / end / max", "%d / %d / %d" % (
            start["threads"], end["threads"], max(s["threads"] for s in self.samples)))
        self.row("store: db / WAL max", "%s / %s" % (
            mb(max(s["db"] for s in self.samples) / 1024),
            mb(max(s["wal"] for s in self.samples) / 1024)),
            "db %s at the end: %.0f bytes per message each way (history is kept 7 days)"
            % (mb(end["db"] / 1024), end["db"] / max(1, n_cmd + n_wh)))
        self.row("outbox / inbox depth max", "%d / %d" % (
            max(s["outbox"] for s in self.samples), max(s["inbox"] for s in self.samples)),
            "sampled from /metrics")

        wall = self.t_load_end - self.t0
        cpu = self.cpu1 - self.cpu0
        busy = ((self.machine1[0] - self.machine0[0]) / (self.machine1[1] - self.machine0[1])
                * os.cpu_count())
        self.row("bridge CPU", "%.0f%% of one CPU, %.3f s per 1000 messages" % (
            100 * cpu / wall, cpu / max(1, n_cmd + n_wh + rep_expected) * 1000),
            "over the load; messages: commands, webhooks and reports; highest sample %.0f%%"
            % max(s["cpu_pct"] for s in self.load_samples))
        ours = {"bridge": cpu}
        ours.update({k: self.others1[k] - self.others0[k] for k in self.others0})
        ours.update(zip(("mqtt_load + webhook_load", "mosquitto_sub", "soak.py"),
                        (b - a for a, b in zip(self.own0, self.own1))))
        self.row("machine CPU busy", "%.0f%% of %d CPUs" % (100 * busy / os.cpu_count(),
                                                            os.cpu_count()),
                 "in CPUs: %s, anything else %.2f" % (
                     ", ".join("%s %.2f" % (k, v / wall) for k, v in ours.items()),
                     busy - sum(ours.values()) / wall))
        self.row("load average (1 min)", "%.2f at the start, %.2f max, %.2f at the end" % (
            start["load"], max(s["load"] for s in self.samples), end["load"]))

        f = self.cmd_f
        if "p99_ms" in f:
            self.row("publish -> outcome", "p50 %s, p99 %s, max %s ms"
                     % (f["p50_ms"], f["p99_ms"], f["max_ms"]),
                     "mqtt_load latency; each command's times in latency-times.txt (--keep)")
        f = self.wh_f
        if "p99_ms" in f:
            self.row("webhook answer", "p50 %s, p99 %s, max %s ms"
                     % (f["p50_ms"], f["p99_ms"], f["max_ms"]),
                     "webhook_load, from when each was due")

    def table(self):
        print()
        print("sinch-bridge soak, %s" % time.strftime("%Y-%m-%d %H:%M"))
        print("machine: %s" % run.machine())
        print("load average (1, 5, 15 min) at the start: %s, at the end: %s"
              % (getattr(self, "load_before", "?"), run.loadavg()))
        print("bridge: BRIDGE_RATE_LIMIT=0, BRIDGE_MQTT_MAX_INFLIGHT=1000, BRIDGE_LOG_LEVEL=warn, "
              "SINCH_WEBHOOK_SECRET set, %sstore in a temp dir; sinch-sim plays delivery "
              "reports to it" % "".join(e + ", " for e in self.args.env))
        print()
        w = max(len(r[0]) for r in self.rows)
        v = max(len(r[1]) for r in self.rows)
        for figure, value, note in self.rows:
            print("%-*s  %-*s  %s" % (w, figure, v, value, note))
        for p in self.problems:
            print("PROBLEM: " + p)
        print("samples: %s" % os.path.join(self.dir, "samples.csv"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run.add_common_args(ap)
    ap.add_argument("--minutes", type=float, default=10, help="length of the load (default 10)")
    ap.add_argument("--rate", type=float, default=200, help="send commands a second (200)")
    ap.add_argument("--webhook-rate", type=float, default=200,
                    help="inbound webhooks a second (200)")
    ap.add_argument("--interval", type=float, default=10, help="seconds between samples (10)")
    ap.add_argument("--connections", type=int, default=8,
                    help="webhook_load's keep-alive connections (8)")
    ap.add_argument("--idle-wait", type=float, default=2,
                    help="seconds between the bridge being online and the start sample")
    args = ap.parse_args()
    run.check_common_args(args, "soak.py")
    if args.minutes <= 0 or args.rate <= 0 or args.webhook_rate <= 0 or args.interval <= 0:
        sys.exit("soak.py: --minutes, --rate, --webhook-rate and --interval must be positive")
    if not run.MOSQUITTO_SUB:
        sys.exit("soak.py: needs mosquitto_sub (mosquitto-clients)")
    args.seconds = args.minutes * 60  # Bench.start_sim() reads it
    return run.execute(Soak(args))


if __name__ == "__main__":
    sys.exit(main())
