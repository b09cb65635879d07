"""PNG plots (matplotlib, Debian's python3-matplotlib): hydration progress over time per
contender, one figure per remote condition, and the foreground scenario's progress and IOPS.
Each contender is drawn from its median-time repetition; a run stopped at the cap continues as
a dashed line to its projected end."""

import os
import re
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "hydrate": "#d62728",
    "nbdcopy": "#1f77b4",
    "nbdcopy -C4 -T4": "#17becf",
    "cow + read": "#2ca02c",
    "cow + scan": "#98df8a",
    "q-s-d stream": "#9467bd",
}


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _median_run(runs):
    m = statistics.median(r["seconds"] for r in runs)
    return min(runs, key=lambda r: abs(r["seconds"] - m))


def render_all(data, out_dir):
    figures = {}
    hyd = data["scenarios"].get("hydration", {}).get("records", [])
    if hyd:
        figures["hydration"] = _hydration(hyd, data, out_dir)
    fg = data["scenarios"].get("foreground", {}).get("records", [])
    if fg:
        figures["foreground"] = _foreground(fg, out_dir)
    return figures


def _hydration(records, data, out_dir):
    cap = data["args"]["cap"]
    out = {}
    conditions = []
    for r in records:
        if r["condition"] not in conditions:
            conditions.append(r["condition"])
    for cond in conditions:
        runs = [r for r in records if r["condition"] == cond]
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        finished_max = 0.0
        contenders = [c for c in COLORS if any(r["contender"] == c for r in runs)]
        for c in contenders:
            r = _median_run([x for x in runs if x["contender"] == c])
            ts = [s[0] for s in r["samples"]]
            fs = [100 * s[1] for s in r["samples"]]
            if r["projected"]:
                label = "%s: ~%.1f s (projected; stopped at %.0f %%)" % (
                    c, r["seconds"], 100 * r["fraction_at_stop"])
            else:
                label = "%s: %.2f s%s" % (c, r["seconds"], ", durable" if r["durable"] else "")
                finished_max = max(finished_max, r["seconds"])
            ax.plot(ts, fs, color=COLORS[c], label=label, linewidth=2)
            if r["projected"] and ts:
                ax.plot([ts[-1], r["seconds"]], [fs[-1], 100], color=COLORS[c], linestyle="--",
                        linewidth=1.2)
        xmax = max(finished_max * 1.15, min(cap * 1.1, max(finished_max * 3, 1.0)))
        ax.set_xlim(0, xmax)
        ax.set_ylim(0, 102)
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("hydrated (% of the disk)")
        size = runs[0]["size"] / (1 << 30)
        ax.set_title("Hydration progress: %s, %g GiB %s image (median run)" % (
            cond, size, runs[0]["image"]))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        name = "hydration-%s.png" % slug(cond)
        fig.savefig(os.path.join(out_dir, name))
        plt.close(fig)
        out[cond] = name
    return out


def _iops_series(log):
    buckets = {}
    for t_ms, value, *_ in log:
        buckets[t_ms] = buckets.get(t_ms, 0) + value
    times = sorted(buckets)
    return [t / 1000.0 for t in times], [buckets[t] for t in times]


def _foreground(records, out_dir):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), dpi=100, sharex=True)
    contenders = []
    for r in records:
        if r["contender"] not in contenders:
            contenders.append(r["contender"])
    for c in contenders:
        runs = [r for r in records if r["contender"] == c]
        m = statistics.median(r["loaded_iops"] for r in runs)
        r = min(runs, key=lambda x: abs(x["loaded_iops"] - m))
        color = COLORS.get(c, "black")
        top.plot([s[0] for s in r["loaded_samples"]], [100 * s[1] for s in r["loaded_samples"]],
                 color=color, linewidth=2, label=c)
        t, v = _iops_series(r["loaded_iops_log"])
        bottom.plot(t, v, color=color, linewidth=2, label="%s, background on" % c)
        t, v = _iops_series(r["idle_iops_log"])
        bottom.plot(t, v, color=color, linewidth=1.2, linestyle="--",
                    label="%s, background off" % c)
    top.set_ylabel("hydrated (% of the disk)")
    top.set_ylim(0, 102)
    top.set_title("Background hydration under foreground fio (randrw 4k QD16), dense, 5 ms")
    top.grid(True, alpha=0.3)
    top.legend(loc="lower right", fontsize=8)
    bottom.set_ylabel("foreground IOPS (read+write)")
    bottom.set_xlabel("seconds since fio started")
    bottom.set_yscale("log")
    bottom.grid(True, alpha=0.3, which="both")
    bottom.legend(loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    name = "foreground.png"
    fig.savefig(os.path.join(out_dir, name))
    plt.close(fig)
    return name
