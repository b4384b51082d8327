# `make help`: every target whose rule line ends in `## purpose`, under the group the nearest
# `##@ Group` line above it (in the same makefile) names; groups in the order of `order`
# (HELP_GROUPS, `|`-separated), any other group after them, a target with none under "Other".
# format=tsv prints `group<TAB>target` lines instead (tests/unit/test_makefile.py reads them).
BEGIN {
    ngroups = split(order, groups, "|")
    for (i = 1; i <= ngroups; i++) known[groups[i]] = 1
}
FNR == 1 { group = "" }  # a group never carries over into the next makefile
/^##@ / { group = substr($0, 5); next }
/^[a-zA-Z0-9_.-]+:.*## / {
    target = $0
    sub(/:.*/, "", target)
    if (target in seen) next
    seen[target] = 1
    purpose = substr($0, index($0, "## ") + 3)
    g = (group == "") ? "Other" : group
    if (!(g in known)) { known[g] = 1; groups[++ngroups] = g }
    if (format == "tsv") {
        rows[g] = rows[g] g "\t" target "\n"
    } else if (color) {
        rows[g] = rows[g] sprintf("  \033[36m%-22s\033[0m %s\n", target, purpose)
    } else {
        rows[g] = rows[g] sprintf("  %-22s %s\n", target, purpose)
    }
}
END {
    for (i = 1; i <= ngroups; i++) {
        g = groups[i]
        if (!(g in rows)) continue
        if (format == "tsv") { printf "%s", rows[g]; continue }
        printf "%s%s\n%s", (shown++ ? "\n" : ""), g, rows[g]
    }
}
