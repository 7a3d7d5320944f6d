#!/usr/bin/env python3
"""report.py META RESULTS.tsv OUT.md OUT.png: the table, targets and bar chart of tests/bench/run.

RESULTS.tsv lines: scenario, tool, repetition, value ('' = failed), unit, peak RSS MiB, note
('timeout' = the value is a lower bound). Medians over the runs that finished; ratios are
tool / thaw for the same scenario (limits: limit / thaw restore), so for times > 1 = slower than thaw.
The chart needs matplotlib (Debian: python3-matplotlib); without it only the table is written."""
import statistics
import sys
from collections import OrderedDict, defaultdict

SCENARIOS = OrderedDict([
    ("restore", ("full restore into a file", "s", "thaw-restore")),
    ("dd", ("dd bs=1M of the image, cold mount", "s", "thaw-mount")),
    ("rand-cold-p50", ("random 4 KiB read, cold, p50", "ms", "thaw-mount")),
    ("rand-cold-p99", ("random 4 KiB read, cold, p99", "ms", "thaw-mount")),
    ("rand-warm-p50", ("random 4 KiB read, warm, p50", "ms", "thaw-mount")),
    ("rand-warm-p99", ("random 4 KiB read, warm, p99", "ms", "thaw-mount")),
    ("file8m", ("mount + fuse2fs + copy an 8 MiB file (thaw files cp: no mount)", "s", "thaw-mount")),
    ("mount-ready", ("mount command until the image file is there", "s", "thaw-mount")),
    ("start", ("process start: print the version", "s", "thaw-version")),
    ("limit-net", ("network limit: thaw's chunks by 16 parallel curl", "s", "thaw-restore")),
    ("limit-cpu", ("CPU limit: thaw verify of the local datastore", "s", "thaw-restore")),
])
TOOLS = OrderedDict([
    ("thaw-restore", "thaw restore (16-way)"),
    ("thaw-restore-p1", "thaw restore --parallel 1"),
    ("casync-extract", "casync extract"),
    ("restic-restore", "restic restore"),
    ("thaw-mount", "thaw mount"),
    ("thaw-mount-p1", "thaw mount, fuse2fs on its partition file (README recipe)"),
    ("restic-mount", "restic mount"),
    ("rclone-mount", "rclone mount (raw image, HTTP)"),
    ("casync-thaw-mount", "thaw mount of casync's image"),
    ("thaw-files-cp", "thaw files cp (in-process ext4, no mount)"),
    ("thaw-version", "thaw --version"),
    ("restic-version", "restic version"),
    ("rclone-version", "rclone version"),
    ("curl-x16", "curl, 16 parallel"),
    ("thaw-verify-local", "thaw verify, local"),
])
RATE_SCENARIOS = ("restore", "dd", "limit-net", "limit-cpu")


def load(meta_path, tsv_path):
    meta = {}
    for line in open(meta_path):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            meta[k] = v
    runs = defaultdict(list)  # (scenario, tool) -> [(value or None, rss, note)]
    for line in open(tsv_path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 7:
            continue
        sc, tool, _rep, val, _unit, rss, note = f[:7]
        runs[(sc, tool)].append((float(val) if val else None, rss, note))
    return meta, runs


def summarise(meta, runs):
    """(scenario, tool) -> dict(median, bound, n, failed, rss, note)."""
    out = OrderedDict()
    for sc in SCENARIOS:
        for tool in TOOLS:
            rs = runs.get((sc, tool))
            if not rs:
                continue
            ok = [v for v, _, n in rs if v is not None]
            timeouts = [v for v, _, n in rs if v is not None and n == "timeout"]
            rss = [int(r) for _, r, _ in rs if r.isdigit()]
            notes = sorted({n for _, _, n in rs if n and n != "timeout"})
            out[(sc, tool)] = dict(
                median=statistics.median(ok) if ok else None,
                bound=bool(timeouts) and statistics.median(ok) >= min(timeouts),
                n=len(ok), total=len(rs), failed=len(rs) - len(ok),
                rss=max(rss) if rss else None, notes=notes)
    return out


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return "%.2f ms" % v if v < 10 else "%.1f ms" % v
    return "%.1f s" % v if v < 100 else "%.0f s" % v


def rate(meta, secs):
    return int(meta["nonzero"]) / secs / 1e6 if secs else None


def targets(meta, s):
    """[(target text, verdict, detail)]"""
    res = []
    get = lambda sc, t: (s.get((sc, t)) or {}).get("median")
    thaw = get("restore", "thaw-restore")
    net, cpu = get("limit-net", "curl-x16"), get("limit-cpu", "thaw-verify-local")
    for peer in ("thaw-restore-p1", "casync-extract", "restic-restore"):
        p = get("restore", peer)
        if thaw is None or p is None:
            res.append(("thaw restore ahead of %s" % TOOLS[peer], "NOT MEASURED", "a run failed"))
            continue
        ok = thaw < p
        res.append(("thaw restore ahead of %s" % TOOLS[peer], "MET" if ok else "MISSED",
                    "%s vs %s (%.2fx)" % (fmt(thaw, "s"), ("> " if s[("restore", peer)]["bound"] else "")
                                          + fmt(p, "s"), p / thaw)))
    restic = get("restore", "restic-restore")
    if thaw is None or restic is None:
        res.append(("thaw restore >= 1.15x faster than restic restore", "NOT MEASURED", "a run failed"))
    else:
        res.append(("thaw restore >= 1.15x faster than restic restore",
                    "MET" if restic >= 1.15 * thaw else "MISSED", "%.3fx" % (restic / thaw)))
    if thaw and net:
        res.append(("thaw restore >= 90% of the network limit", "MET" if net >= 0.9 * thaw else "MISSED",
                    "%.0f%% of %.0f MB/s" % (100 * net / thaw, rate(meta, net))))
    limit = max(net or 0, cpu or 0)  # the lower of the two limit rates = the longer time
    if thaw and net and cpu:
        which = "network" if net >= cpu else "CPU"
        r_thaw, r_lim = rate(meta, thaw), rate(meta, limit)
        res.append(("thaw restore >= 85%% of the lower limit (%s, %.0f MB/s)" % (which, r_lim),
                    "MET" if r_thaw >= 0.85 * r_lim else "MISSED",
                    "%.0f MB/s = %.0f%% of the limit" % (r_thaw, 100 * r_thaw / r_lim)))
    dd = get("dd", "thaw-mount")
    for peer in ("restic-mount", "rclone-mount"):
        p = get("dd", peer)
        if dd is None or p is None or not limit:
            res.append(("thaw mount dd >= 3x %s, or >= 85%% of the lower limit" % TOOLS[peer],
                        "NOT MEASURED", "a run failed"))
            continue
        x = p / dd
        of_lim = rate(meta, dd) / rate(meta, limit)
        ok = x >= 3 or of_lim >= 0.85
        res.append(("thaw mount dd >= 3x %s, or >= 85%% of the lower limit" % TOOLS[peer],
                    "MET" if ok else "MISSED",
                    "%.2fx %s; %.0f%% of the limit" % (x, TOOLS[peer], 100 * of_lim)))
    cp = s.get(("file8m", "thaw-files-cp"))
    if cp is None or cp.get("median") is None:
        res.append(("thaw files cp of the 8 MiB file <= 1.5 s, fetching <= 5% of the non-zero chunks",
                    "NOT MEASURED", "a run failed"))
    else:
        import re
        shares = [float(m.group(1)) for n in cp["notes"] for m in [re.search(r"\(([0-9.]+)%\)", n)] if m]
        share = max(shares) if shares else None
        ok = cp["median"] <= 1.5 and share is not None and share <= 5
        res.append(("thaw files cp of the 8 MiB file <= 1.5 s, fetching <= 5% of the non-zero chunks",
                    "MET" if ok else "MISSED", "%s (median); at most %s of the non-zero chunks fetched" % (
                        fmt(cp["median"], "s"), "?" if share is None else "%.1f%%" % share)))

    def no_slower(what, sc, tool):
        t, r = get(sc, tool), get(sc, "restic-mount")
        if t is None or r is None:
            res.append((what, "NOT MEASURED", "a run failed"))
        else:
            res.append((what, "MET" if t <= r else "MISSED", "%s vs %s" % (fmt(t, "s"), fmt(r, "s"))))

    no_slower("thaw mount ready no slower than restic mount", "mount-ready", "thaw-mount")
    for tool, how in (("thaw-mount-p1", "fuse2fs on thaw's partition file (the README's recipe)"),
                      ("thaw-mount", "fuse2fs on the whole image at an offset, as for restic")):
        no_slower("thaw mount + %s + 8 MiB copy no slower than restic mount" % how, "file8m", tool)
    return res


def write_md(meta, s, path):
    L = []
    L.append("# thaw vs casync, restic, rclone: restore and lazy-mount benchmark")
    L.append("")
    L.append("Measured %s to %s with:" % (meta["started"], meta["finished"]))
    L.append("")
    L.append("```sh\n%s\n```" % meta["command"])
    L.append("")
    L.append("- machine: %s; load average at start %s" % (meta["host"], meta["load"]))
    L.append("- thaw: git %s on %s; peers: %s" % (meta["thaw"], meta["jdk"].strip() or "?", meta["versions"]))
    L.append("- image: %s MiB MBR + ext4 disk image (random files, text, free space), %s bytes in non-zero "
             "4 MiB chunks; stored: %s" % (meta["size_mib"], meta["nonzero"], meta["stored"]))
    L.append("- backups (untimed setup): %s" % meta["backup"])
    L.append("- network: every store on 127.0.0.1 (nginx for thaw, casync and the raw image; `rclone serve "
             "restic` for restic) behind one tests/bench/latency-proxy: RTT %s ms, %s per direction"
             % (meta["rtt_ms"], "unlimited" if meta["rate_mbit"] == "0" else meta["rate_mbit"] + " Mbit/s"))
    L.append("- %s runs per figure, interleaved, **median** shown; a pair whose first run exceeded %s s ran "
             "once (\"capped\"); a run is stopped at %s s (\"> \" marks a lower bound)"
             % (meta["reps"], meta["slow_cap"], meta["run_timeout"]))
    L.append("- rates: non-zero image bytes / median wall seconds (10^6 B/s), process start included; "
             "restores write a file on the same local disk for every tool, and their time includes "
             "`sync FILE` afterwards (thaw syncs its target itself, the peers do not)")
    L.append("- cold = a fresh mount (and fresh rclone/restic cache dirs); the kernel page cache is not "
             "dropped, but no tool's data was read through that mount before. Warm = the same %s offsets "
             "read again on the same mount. Random reads use O_DIRECT (tests/bench/random-reads.py)."
             % meta["samples"])
    L.append("- peak RSS: /usr/bin/time -v for restores and limits; VmHWM of the FUSE daemon for mounts "
             "(thaw mount: its detached java process; casync extract: its largest process)")
    L.append("- x thaw = tool's median / thaw's median for the same scenario (thaw restore for the limits), "
             "so for times and latencies above 1 means slower than thaw")
    if meta.get("has_index") != "1":
        L.append("- casync's image through `thaw mount --index`: **not available in this build** "
                 "(`thaw mount --help` has no --index)")
    L.append("")
    L.append("| scenario | tool | median | MB/s | x thaw | peak RSS MiB | runs |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for (sc, tool), r in s.items():
        name, unit, ref = SCENARIOS[sc]
        refm = (s.get((sc if not sc.startswith("limit") else "restore", ref)) or {}).get("median")
        med = r["median"]
        val = ("> " if r["bound"] else "") + fmt(med, unit) if med is not None else "FAILED"
        mbs = "%.0f" % rate(meta, med) if med and sc in RATE_SCENARIOS else ""
        x = "%.2f" % (med / refm) if med and refm else "-"
        runs = "%d" % r["n"]
        if r["total"] < int(meta["reps"]) and r["n"]:
            runs += " (capped)"
        if r["failed"]:
            runs += ", %d failed" % r["failed"]
        if r["bound"]:
            runs += ", timed out"
        if r["notes"]:
            runs += ": " + "; ".join(r["notes"])
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, TOOLS[tool], val, mbs, x, r["rss"] if r["rss"] is not None else "-", runs))
    if meta.get("has_index") != "1":
        L.append("| dd / random / fuse2fs | thaw mount of casync's image | not available in this build | | | | |")
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| target | verdict | measured |")
    L.append("|---|---|---|")
    for t, v, d in targets(meta, s):
        L.append("| %s | **%s** | %s |" % (t, v, d))
    L.append("")
    open(path, "w").write("\n".join(L))


def write_png(meta, s, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: no matplotlib; chart not written", file=sys.stderr)
        return
    panels = [
        ("Full restore (and the limits), seconds (log scale)", ["restore", "limit-net", "limit-cpu"], "log-s"),
        ("dd bs=1M through a cold mount, seconds", ["dd"], "s"),
        ("Mount, fuse2fs, copy one 8 MiB file (and: mount ready; process start), seconds",
         ["file8m", "mount-ready", "start"], "s"),
        ("Random 4 KiB reads, ms (log scale)", ["rand-cold-p50", "rand-cold-p99", "rand-warm-p50",
                                                 "rand-warm-p99"], "ms"),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 13))
    for ax, (title, scs, unit) in zip(axes, panels):
        labels, vals, colors = [], [], []
        for sc in scs:
            for tool in TOOLS:
                r = s.get((sc, tool))
                if not r or r["median"] is None:
                    continue
                lab = TOOLS[tool]
                if sc.startswith("rand"):
                    lab += " - " + sc[5:].replace("-", " ")
                elif sc == "mount-ready":
                    lab += " - mount ready"
                elif sc == "start":
                    lab = "start: " + lab
                elif sc.startswith("limit"):
                    lab = ("network limit: " if sc == "limit-net" else "CPU limit: ") + lab
                labels.append(lab + (" (>)" if r["bound"] else ""))
                vals.append(r["median"])
                colors.append("#999999" if sc.startswith("limit") else
                              "#1f77b4" if tool.startswith("thaw") or tool == "casync-thaw-mount" else "#ff7f0e")
        y = range(len(vals))
        ax.barh(list(y), vals, color=colors)
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left")
        log = unit in ("ms", "log-s")
        if log:
            ax.set_xscale("log")
        for yi, v in zip(y, vals):
            ax.text(v, yi, " " + fmt(v, unit), va="center", fontsize=8)
        ax.set_xlim(right=max(vals) * (3 if log else 1.18) if vals else 1)
    fig.suptitle("thaw vs peers, %s MiB image, RTT %s ms, %s; median of %s (blue: thaw, orange: peers, "
                 "grey: limits; shorter is better)" % (
                     meta["size_mib"], meta["rtt_ms"],
                     "unlimited" if meta["rate_mbit"] == "0" else meta["rate_mbit"] + " Mbit/s", meta["reps"]),
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)


def main():
    meta, runs = load(sys.argv[1], sys.argv[2])
    s = summarise(meta, runs)
    write_md(meta, s, sys.argv[3])
    write_png(meta, s, sys.argv[4])


if __name__ == "__main__":
    main()
