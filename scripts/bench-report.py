#!/usr/bin/env python3
"""Writes BENCHMARKS.md and the charts in docs/ from the results of one
`scripts/bench` run (target/criterion and target/bench). Run by scripts/bench;
run it alone to regenerate from the last run's results."""
import csv
import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BENCH = os.path.join(ROOT, "target", "bench")
CRIT = os.path.join(ROOT, "target", "criterion")
DOCS = os.path.join(ROOT, "docs")


def load(name):
    path = os.path.join(BENCH, name)
    return json.load(open(path)) if os.path.exists(path) else None


def crit(group, bench):
    """Mean estimate in ns of one criterion benchmark, or None."""
    path = os.path.join(CRIT, group, *bench.split("/"), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    return json.load(open(path))["mean"]["point_estimate"]


def fmt_ns(ns):
    return "—" if ns is None else (f"{ns:.0f} ns" if ns < 1e6 else f"{ns / 1e9:.2f} s")


def verdict(ok):
    return "yes" if ok else "**no**"


def machine():
    cpu = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}"


def check_row(label, data, target):
    """A row of the interleaved check latencies: ours against both bare maps."""
    return (f"{label}; medians of {data['rounds']} interleaved rounds)",
            fmt_ns(data["check_hit_live_ns"]),
            f"bare `DashMap::get` {fmt_ns(data['bare_get_ns'])}; same map with our hasher {fmt_ns(data['bare_get_foldhash_ns'])}",
            f"{data['check_vs_bare']:.2f}× · {data['check_vs_foldhash']:.2f}×",
            f"≤ {target}×", verdict(data["check_vs_bare"] <= target))


def rows():
    out = []
    sizes = sorted({int(d.split("_")[-1]) for d in os.listdir(CRIT) if d.startswith("check_")}) if os.path.isdir(CRIT) else []
    for n in sizes:
        g = f"check_{n}"
        lat = load(f"check-latency-{n}.json")
        if lat:
            out.append(check_row(f"`check` hit through the port, {n:,} sessions (one after another", lat, 1.3))
            out.append((f"`check` revoked hit / miss, {n:,}; the store alone (hit)",
                        f"{fmt_ns(lat['check_hit_revoked_ns'])} / {fmt_ns(lat['check_miss_ns'])}; {fmt_ns(lat['store_lookup_ns'])}",
                        "", "", "", ""))
        bare, fold, hit = crit(g, "bare_get/hit"), crit(g, "bare_get_foldhash/hit"), crit(g, "check/hit_live")
        if bare and hit and not lat:
            out.append((f"`check` hit through the port, {n:,} sessions (one after another)", fmt_ns(hit),
                        f"bare `DashMap::get` {fmt_ns(bare)}; same map with our hasher {fmt_ns(fold)}",
                        f"{hit / bare:.2f}× · {hit / fold:.2f}×" if fold else f"{hit / bare:.2f}×",
                        "≤ 1.3×", verdict(hit / bare <= 1.3)))
        miss, revoked, store = crit(g, "check/miss"), crit(g, "check/hit_revoked"), crit(g, "store_lookup/hit_live")
        if miss and revoked and not lat:
            out.append((f"`check` revoked hit / miss, {n:,}; the store alone (hit)",
                        f"{fmt_ns(revoked)} / {fmt_ns(miss)}; {fmt_ns(store)}", "", "", "", ""))
        ind = load(f"check-pipelined-{n}.json")
        if ind:
            out.append(check_row(f"the same, independent lookups overlapped by the CPU, {n:,} (no dependency between lookups", ind, 1.2))
    for n in sizes:
        g = f"apply_{n}"
        bare, ours = crit(g, "bare_insert"), crit(g, "apply_created")
        fold = crit(g, "bare_insert_foldhash")
        if bare and ours:
            extra = f"; with our hasher {n / fold * 1e3:.2f}M/s" if fold else ""
            ratio = f"{100 * bare / ours:.0f} %" + (f" · {100 * fold / ours:.0f} %" if fold else "")
            out.append((f"`apply` created events, {n:,} sessions", f"{n / ours * 1e3:.2f}M/s",
                        f"bare `DashMap::insert` {n / bare * 1e3:.2f}M/s{extra}", ratio,
                        "≥ 70 %", verdict(bare / ours >= 0.7)))
    for kind in ("created", "revoked"):
        canonical, general = crit("decode_apply", f"{kind}/canonical"), crit("decode_apply", f"{kind}/general")
        if canonical and general:
            out.append((f"decode + apply one {kind} record (in cache), canonical encoding", fmt_ns(canonical),
                        f"the general (serde_json) reader {fmt_ns(general)}", f"{canonical / general:.2f}×", "", ""))
    for m in load("memory.json") or []:
        out.append((f"memory per session, {m['sessions']:,} UUID sessions", f"{m['store_bytes']:.1f} B",
                    f"bare `DashMap<[u8;16],u64>` {m['bare_bytes']:.1f} B", f"{m['store_bytes'] / m['bare_bytes']:.2f}×",
                    "≤ 64 B", verdict(m["store_bytes"] <= 64)))
    cm = load("cutoffs-memory.json")
    if cm:
        out.append((f"memory per user with a cutoff (log out everywhere), {cm['users']:,} users", f"{cm['bytes_per_user']:.1f} B",
                    "", "", "≤ 32 B", verdict(cm["bytes_per_user"] <= 32)))
    pg = load("postgres-baseline.json")
    if pg:
        for run in pg["runs"]:
            p, o = run["postgres"], run["projection"]
            ratio = run.get("p50_ratio", p["p50_us"] / o["p50_us"])
            rounds = f"; medians of {pg['rounds']} interleaved rounds" if "rounds" in pg else ""
            ceiling = ""
            if "bare_get" in run:
                ceiling = (f"; a bare `DashMap::get` in the same loop: p50 {run['bare_get']['p50_us'] * 1e3:.0f} ns"
                           f" = {run['bare_get_p50_ratio']:.0f}×")
            spread = ""
            if "round_ratios" in run:
                spread = f" (rounds {min(run['round_ratios']):.0f}–{max(run['round_ratios']):.0f}×)"
            out.append((f"`check` vs today's Postgres adapter, {pg['rows']:,} rows, {run['tasks']} task(s)"
                        + (f" (ours timed per {pg['projection_batch']} checks{rounds})" if pg.get("projection_batch", 1) > 1 else ""),
                        f"p50 {o['p50_us'] * 1e3:.0f} ns · {o['checks_per_sec'] / 1e6:.2f}M checks/s",
                        f"p50 {p['p50_us']:.0f} µs · p99 {p['p99_us']:.0f} µs · {p['checks_per_sec'] / 1e3:.1f}k checks/s{ceiling}",
                        f"{ratio:.0f}× lower p50{spread}", "≥ 500×", verdict(ratio >= 500)))
    r = load("replay.json")
    if r:
        rate, raw = r["events"] / r["feed_s"], r["events"] / r["raw_base_s"]
        ratio = r.get("feed_vs_raw", rate / raw)
        rounds = f", medians of {r['rounds']} interleaved rounds" if "rounds" in r else ""
        out.append((f"replay of {r['events']:,} events ({r['partitions']} partitions), start → proven Live{rounds}",
                    f"{rate / 1e6:.2f}M events/s ({r['feed_s']:.2f} s)",
                    f"raw no-op BaseConsumer {raw / 1e6:.2f}M/s; StreamConsumer {r['events'] / r['raw_stream_s'] / 1e6:.2f}M/s",
                    f"{100 * ratio:.0f} %" + (f" (rounds {100 * min(r['round_ratios']):.0f}–{100 * max(r['round_ratios']):.0f} %)"
                                              if r.get("round_ratios") else ""), "≥ 1M/s and ≥ 70 %",
                    f"1M/s {verdict(rate >= 1e6)} · 70 % {verdict(ratio >= 0.7)}"))
        if "feed_sasl_ssl_s" in r:
            out.append((f"the same replay over SASL_SSL (SCRAM-SHA-512 on TLS), same rounds",
                        f"{r['events'] / r['feed_sasl_ssl_s'] / 1e6:.2f}M events/s ({r['feed_sasl_ssl_s']:.2f} s)",
                        "the plaintext feed above", f"{100 * r['sasl_ssl_vs_plaintext']:.0f} %", "", ""))
    p = load("propagation.json")
    if p:
        out.append((f"revocation propagation, ack → `check` says Revoked, {p['revocations']:,} revocations",
                    f"p50 {p['p50_ms']:.3f} ms · p99 {p['p99_ms']:.2f} ms · max {p['max_ms']:.2f} ms", "", "",
                    "p99 ≤ 25 ms", verdict(p["p99_ms"] <= 25)))
    c = load("cutoff-propagation.json")
    if c:
        out.append((f"log out everywhere: one cutoff record → all {c['sessions_per_user']:,} sessions of the user revoked at "
                    f"{c['replicas']} replicas, broker ack → revoked, {c['rounds']} cutoffs",
                    f"p50 {c['p50_ms']:.3f} ms · p99 {c['p99_ms']:.2f} ms · max {c['max_ms']:.2f} ms", "", "",
                    "p99 ≤ 10 ms", verdict(c["p99_ms"] <= 10)))
    h = load("http.json")
    if h:
        a, b = h["projection"], h["postgres_only"]
        out.append((f"HTTP `GET /v1/sessions/{{sid}}`, wrk 2 threads × {h['connections']} connections",
                    f"{a['requests_per_sec'] / 1e3:.0f}k req/s · p50 {a['p50_ms']:.2f} ms · p99 {a['p99_ms']:.2f} ms",
                    f"`--mode postgres-only` {b['requests_per_sec'] / 1e3:.1f}k req/s · p50 {b['p50_ms']:.2f} ms · p99 {b['p99_ms']:.2f} ms",
                    f"{a['requests_per_sec'] / b['requests_per_sec']:.1f}× throughput", "≥ 10×",
                    verdict(a["requests_per_sec"] >= 10 * b["requests_per_sec"])))
    g = load("gateway/gateway.json")
    if g:
        for key in sorted((k for k in g if k.startswith("rate")), key=lambda k: int(k[4:])):
            p, f = g[key]["plain"], g[key]["forward-auth"]
            x = g[key].get("floor")
            floor = f"; nginx `auth_request` to its own `return 200`: +{x['p50'] - p['p50']:.3f} / +{x['p99'] - p['p99']:.3f} ms" if x else ""
            added = f["p99"] - p["p99"]
            out.append((f"forward-auth through nginx (`auth_request`, deploy/nginx), {int(key[4:]):,} req/s offered at a constant "
                        f"rate (vegeta), {g['tokens']:,} tokens (EdDSA), medians of {g['rounds']} rounds",
                        f"p50 {f['p50']:.3f} ms · p99 {f['p99']:.3f} ms",
                        f"the same nginx without forward-auth: p50 {p['p50']:.3f} ms · p99 {p['p99']:.3f} ms{floor}",
                        f"added p50 {f['p50'] - p['p50']:+.3f} ms · p99 {added:+.3f} ms", "added p99 ≤ 0.3 ms",
                        verdict(added <= 0.3)))
        p, f = g["c32"]["plain"], g["c32"]["forward-auth"]
        out.append(("forward-auth through nginx at saturation, wrk 2 threads × 32 connections",
                    f"{f['rps'] / 1e3:.0f}k req/s · p99 {f['p99']:.2f} ms",
                    f"the same nginx without forward-auth {p['rps'] / 1e3:.0f}k req/s · p99 {p['p99']:.2f} ms",
                    f"{f['rps'] / p['rps']:.2f}× throughput", "", ""))
        e, k = g["endpoint"], g["check"]
        out.append(("the forward-auth endpoint alone (verified-token cache warm), wrk 2 threads × 32 connections",
                    f"{e['rps'] / 1e3:.0f}k req/s · p50 {e['p50']:.2f} ms · p99 {e['p99']:.2f} ms",
                    f"the plain check `GET /v1/sessions/{{sid}}` {k['rps'] / 1e3:.0f}k req/s", f"{e['rps'] / k['rps']:.2f}×", "", ""))
    hit, base = crit("forward_auth", "repeated token, cache hit (EdDSA)"), crit("forward_auth", "session check alone (baseline)")
    if hit and base:
        sig = {a: crit("forward_auth", f"new token, signature checked ({a})") for a in ("EdDSA", "ES256", "RS256")}
        out.append(("one forward-auth decision in-process: a repeated token (SHA-256 + cache lookup + session and user checks)",
                    f"{fmt_ns(hit)} (ES256 {fmt_ns(crit('forward_auth', 'repeated token, cache hit (ES256)'))}, "
                    f"RS256 {fmt_ns(crit('forward_auth', 'repeated token, cache hit (RS256)'))})",
                    f"the session check alone {fmt_ns(base)}", f"{hit / base:.1f}×", "", ""))
        out.append(("the same, a token seen for the first time (signature checked; pure-Rust crypto)",
                    " · ".join(f"{a} {v / 1e3:.0f} µs" for a, v in sig.items() if v),
                    f"a repeated token {fmt_ns(hit)}", f"{sig['EdDSA'] / hit:.0f}× (EdDSA)", "", ""))
    cdc = load("cdc.json")
    if cdc:
        out.append((f"CDC propagation, Postgres commit → `check` says Revoked through Debezium, {cdc['revocations']:,} revocations "
                    f"(`poll.interval.ms={cdc['poll_interval_ms']}`, heartbeats every {cdc['heartbeat_interval_ms']} ms)",
                    f"p50 {cdc['p50_ms']:.1f} ms · p99 {cdc['p99_ms']:.1f} ms · max {cdc['max_ms']:.1f} ms",
                    f"Debezium's default `poll.interval.ms=500` ({cdc['default_revocations']} revocations): p50 {cdc['default_p50_ms']:.0f} ms · "
                    f"p99 {cdc['default_p99_ms']:.0f} ms · max {cdc['default_max_ms']:.0f} ms", "",
                    "p99 ≤ 100 ms", verdict(cdc["p99_ms"] <= 100)))
        if "cutoffs" in cdc:
            out.append((f"CDC log out everywhere: commit of one `user_session_cutoffs` row → all 10,000 sessions of the user revoked, "
                        f"{cdc['cutoffs']} users",
                        f"p50 {cdc['cutoff_p50_ms']:.1f} ms · p99 {cdc['cutoff_p99_ms']:.1f} ms · max {cdc['cutoff_max_ms']:.1f} ms",
                        "", "", "p99 ≤ 100 ms", verdict(cdc["cutoff_p99_ms"] <= 100)))
        out.append((f"CDC initial snapshot of {cdc['rows']:,} rows → proven Live",
                    f"{cdc['snapshot_s']:.1f} s ({cdc['rows'] / cdc['snapshot_s'] / 1e3:.0f}k rows/s)", "", "", "", ""))
        out.append(("CDC staleness behind the Postgres commit (source bound), quiet table (heartbeats only) · during the revocations",
                    f"p50 {cdc['quiet_staleness_p50_ms']:.0f} ms, max {cdc['quiet_staleness_max_ms']:.0f} ms · "
                    f"p50 {cdc['loaded_staleness_p50_ms']:.0f} ms, max {cdc['loaded_staleness_max_ms']:.0f} ms",
                    "", "", "< max staleness (2 s)",
                    verdict(max(cdc['quiet_staleness_max_ms'], cdc['loaded_staleness_max_ms']) < 2000)))
    def cpu(run, key):
        """The CPU seconds a start used (user + system), where the bench measured them."""
        return f", CPU {run[key]:.1f} s" if run.get(key) is not None else ""

    def batched(run):
        """The raw consumer taking records thousands at a time, where measured."""
        if run.get("raw_batched_s") is None:
            return ""
        return f"; batched (`rd_kafka_consume_batch_queue`) {run['raw_batched_s']:.2f} s{cpu(run, 'raw_batched_cpu_s')}"

    st = load("start.json")
    if st:
        n = st["sessions"]
        cold_rate = n / st["cold_s"]
        out.append((f"whole-process cold start of the release `projector`, {n:,} sessions ({st['partitions']} partitions, lz4, "
                    f"~{st['value_bytes']:.0f} B values) to proven Live",
                    f"{st['cold_s']:.2f} s ({cold_rate / 1e6:.2f}M records/s){cpu(st, 'cold_cpu_s')}",
                    f"raw no-op BaseConsumer over the same topic {st['raw_s']:.2f} s{cpu(st, 'raw_cpu_s')}{batched(st)}",
                    f"{100 * st['cold_vs_raw']:.0f} %", "≥ 90 %", verdict(st["cold_vs_raw"] >= 0.9)))
        out.append((f"warm start (snapshot + {st['tail']:,} new records) to proven Live",
                    f"{st['warm_s']:.2f} s", f"the cold start above {st['cold_s']:.2f} s",
                    f"{st['cold_s'] / st['warm_s']:.1f}× faster", "≤ 1 s and ≥ 5×",
                    f"1 s {verdict(st['warm_s'] <= 1.0)} · 5× {verdict(st['cold_s'] / st['warm_s'] >= 5)}"))
        if st.get("peer_s"):
            out.append(("new replica, empty disk, booted from a live peer (`--bootstrap-from`: fetch its snapshot, check it, "
                        "replay the tail) to proven Live",
                        f"{st['peer_s']:.2f} s", f"its own cold start above {st['cold_s']:.2f} s",
                        f"{st['cold_s'] / st['peer_s']:.1f}× faster", "≤ 2 s", verdict(st["peer_s"] <= 2.0)))
        if st.get("fallback_cold") is not None:
            cold_fb, peer_fb = st["fallback_cold"], st["fallback_peer"]
            out.append(("checks the Postgres fallback served until Live, 500 checks/s offered from the process start "
                        "(a check to a port not yet open goes to another replica)",
                        f"booted from a peer: {peer_fb:,}", f"cold start: {cold_fb:,}",
                        f"{cold_fb / max(peer_fb, 1):.0f}× fewer", "≥ 10× fewer", verdict(cold_fb >= 10 * max(peer_fb, 1))))
        cold_b = st["cold_rss_kb"] * 1024 / n
        warm_b = st["warm_rss_kb"] * 1024 / (n + st["tail"])
        out.append(("resident memory of the whole process after start (VmRSS)",
                    f"cold {st['cold_rss_kb'] / 1024:.0f} MB = {cold_b:.0f} B/session · warm {st['warm_rss_kb'] / 1024:.0f} MB = {warm_b:.0f} B/session",
                    "", "", "≤ 64 B/session", f"cold {verdict(cold_b <= 64)} · warm {verdict(warm_b <= 64)}"))
        out.append(("bytes over loopback (the broker's fetches) during the start",
                    f"warm {st['warm_network_bytes'] / 2**20:.0f} MB", f"cold {st['cold_read_bytes'] / 2**20:.0f} MB",
                    f"{st['cold_read_bytes'] / max(st['warm_network_bytes'], 1):.0f}× less", "", ""))
        out.append(("snapshot written at shutdown",
                    f"{st['snapshot_write_ms'] / 1e3:.2f} s, {st['snapshot_bytes'] / 2**20:.0f} MB "
                    f"({st['snapshot_bytes'] / n:.0f} B/session)", "", "", "", ""))
        out.append(("a check (lookup of a held session) while a snapshot is being written",
                    f"{st['check_during_snapshot_ns']:.0f} ns", f"idle {st['check_idle_ns']:.0f} ns",
                    f"{st['check_during_snapshot_ns'] / st['check_idle_ns']:.2f}×", "", ""))
    sc = load("start-cdc.json")
    if sc:
        n = sc["rows"]
        out.append((f"whole-process cold start on Debezium change events, {n:,} rows ({sc['partitions']} partitions, lz4, "
                    f"~{sc['value_bytes']:.0f} B values, `--format debezium`) to proven Live",
                    f"{sc['cold_s']:.2f} s ({n / sc['cold_s'] / 1e6:.2f}M records/s); RSS {sc['cold_rss_kb'] / 1024:.0f} MB "
                    f"= {sc['cold_rss_kb'] * 1024 / n:.0f} B/session{cpu(sc, 'cold_cpu_s')}",
                    f"raw no-op BaseConsumer over the same topic {sc['raw_s']:.2f} s{cpu(sc, 'raw_cpu_s')}{batched(sc)}",
                    f"{100 * sc['cold_vs_raw']:.0f} %", "≥ 90 %", verdict(sc["cold_vs_raw"] >= 0.9)))
    for r in load("restore.json") or []:
        out.append((f"snapshot restore in-process, {r['sessions']:,} sessions (read + checksum + merge into a store of the written seed; medians of 5 interleaved rounds)",
                    f"{r['ours_s']:.2f} s ({r['ours_s'] * 1e9 / r['sessions']:.0f} ns/session)",
                    f"into a store of another seed {r['other_seed_s']:.2f} s; bare `DashMap::insert`, 2 threads {r['bare_s']:.2f} s",
                    f"{r['other_seed_s'] / r['ours_s']:.1f}× faster", "", ""))
    return out


def charts():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench-report: matplotlib missing; charts not drawn (scripts/bench installs it)", file=sys.stderr)
        return []
    made = []
    path = os.path.join(BENCH, "propagation.csv")
    if os.path.exists(path):
        ms = sorted(float(r["ms"]) for r in csv.DictReader(open(path)))
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(ms, [100 * (i + 1) / len(ms) for i in range(len(ms))])
        ax.set_xscale("log")
        ax.set_xlabel("broker ack → check answers Revoked (ms, log scale)")
        ax.set_ylabel("revocations (%)")
        ax.set_title(f"Revocation propagation, {len(ms)} revocations (CDF)")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(DOCS, "bench-propagation.png"), dpi=100)
        made.append("bench-propagation.png")
    path = os.path.join(BENCH, "pause-timeline.csv")
    if os.path.exists(path):
        data = list(csv.DictReader(open(path)))
        t = [float(r["ms"]) / 1e3 for r in data]
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        a1.plot(t, [max(float(r["staleness_ms"]), 0) / 1e3 for r in data], label="staleness")
        a1.axhline(1.0, color="red", linestyle="--", label="max staleness")
        a1.axvspan(2, 5, color="grey", alpha=0.2, label="broker paused")
        a1.set_ylabel("staleness (s)")
        a1.legend(loc="upper left")
        a1.set_title("Across a broker pause: staleness, state and answers")
        colors = {"live": "green", "transient": "orange", "revoked": "red"}
        for answer, color in colors.items():
            pts = [ti for ti, r in zip(t, data) if r["answer"] == answer]
            a2.scatter(pts, [answer] * len(pts), s=4, color=color)
        a2.set_xlabel("time (s)")
        a2.set_ylabel("answer")
        fig.tight_layout()
        fig.savefig(os.path.join(DOCS, "bench-pause.png"), dpi=100)
        made.append("bench-pause.png")
    path = os.path.join(BENCH, "replay-progress.csv")
    if os.path.exists(path):
        data = [(float(r["ms"]), int(r["records"])) for r in csv.DictReader(open(path))]
        pts = [(t, (r2 - r1) / (t2 - t) * 1e3) for (t, r1), (t2, r2) in zip(data, data[10:]) if t2 > t]
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot([p[0] / 1e3 for p in pts], [p[1] / 1e6 for p in pts])
        ax.set_xlabel("time since start (s)")
        ax.set_ylabel("events/s (millions)")
        ax.set_title(f"Replay progress, {data[-1][1]:,} events")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(DOCS, "bench-replay.png"), dpi=100)
        made.append("bench-replay.png")
    return made


def main():
    table = rows()
    if not table:
        sys.exit("bench-report: no results in target/bench or target/criterion; run scripts/bench first")
    made = charts()
    notes = open(os.path.join(ROOT, "docs", "benchmarks-notes.md")).read()
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by scripts/bench (scripts/bench-report.py); edit docs/benchmarks-notes.md for the prose. -->",
        "",
        f"One run of `scripts/bench` on {datetime.date.today().isoformat()}: {machine()}. Kafka and PostgreSQL ran on the same",
        "machine. These VMs are shared and noisy: compare the **ratios** (each measured against its baseline in the",
        "same run), not the absolute numbers. Raw logs and data: `target/bench/`, `target/criterion/`.",
        "",
        "```sh",
        "scripts/bench          # everything, full sizes (~15 min); rewrites this file and the charts",
        "scripts/bench quick    # small sizes (~5 min)",
        "```",
        "",
        "| what | ours | baseline (same run) | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    if made:
        lines += ["", "## Charts", ""] + [f"![{m}](docs/{m})" for m in made]
    lines += ["", notes.strip(), ""]
    open(os.path.join(ROOT, "BENCHMARKS.md"), "w").write("\n".join(lines))
    print(f"bench-report: wrote BENCHMARKS.md ({len(table)} rows) and {len(made)} charts in docs/")


if __name__ == "__main__":
    main()
