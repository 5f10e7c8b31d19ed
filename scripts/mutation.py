"""``make mutation``: mutmut over the critical modules, each against the tests that guard it.

Every target runs in its own copy of the project under ``var/mutation/<name>/`` (mutmut
writes its ``mutants/`` folder there, never into ``src/``), with only the target's module
mutated and only the named functions' mutants run. The summary (killed, survived, and the
surviving mutants' names) goes to ``var/mutation/report.md``; docs/development.md keeps the
last one.

Usage: python scripts/mutation.py [TARGET ...]   (default: every target)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = "mutmut==3.8.1"


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # path under src/
    functions: tuple[str, ...]  # whose mutants run (all of the module's when empty)
    tests: tuple[str, ...]


TARGETS = [
    Target("ledger-merkle", "sahab/ledger/merkle.py",
           ("leaf_hash", "node_hash", "root_of", "CompactRange", "root_from_inclusion_proof",
            "verify_inclusion", "verify_consistency"),
           ("tests/ledger/test_merkle.py",)),
    # mutmut leaves decorated functions alone: the services under @transaction.atomic
    # (submit_bid, withdraw_bid, open_tender) are checked by planted bugs instead
    # (docs/development.md).
    Target("procurement-deadlines-and-locks", "sahab/procurement/services.py",
           ("_share_lock",),
           ("tests/procurement/test_refusals.py", "tests/procurement/test_races.py")),
    Target("mail-smtp-refusals", "sahab/mail/smtp.py",
           ("RateLimiter",), ("tests/mail/test_refusals.py",)),
    Target("mail-maildir-durability", "sahab/mail/maildir.py",
           ("deliver", "write_durably", "_fsync_dir"), ("tests/mail/test_durability.py",)),
    # Who may call what through the gateway: the grant's lookup and validity, the
    # caller's certificate, and the per-method, per-path endpoints of a grant.
    Target("exchange-grants", "sahab/exchange/selectors.py",
           ("GrantInfo", "grant_for", "caller_for_token"),
           ("tests/exchange/test_gateway.py",)),
    Target("exchange-endpoints", "sahab/exchange/protocol.py",
           ("Endpoint", "_segments_match", "path_segments", "allowed", "parse_endpoints"),
           ("tests/exchange/test_protocol.py", "tests/exchange/test_gateway.py")),
    Target("procurement-sealing", "sahab/procurement/sealing.py",
           ("subsets", "Envelope", "parse", "_content_aad", "_wrap_key", "seal",
            "open_envelope", "commitment"),
           ("tests/procurement/test_sealing.py",)),
]


def prepare(target: Target) -> Path:
    """A copy of src/ and tests/ with a mutmut configuration for ``target``."""
    work = ROOT / "var" / "mutation" / target.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for part in ("src", "tests"):
        shutil.copytree(ROOT / part, work / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    # mutmut copies all of src/ (so that the mutated package is the one imported) but
    # mutates only the target module.
    others = sorted(str(p.relative_to(work)) for p in (work / "src").rglob("*.py")
                    if p.relative_to(work / "src").as_posix() != target.module)
    def listed(values) -> str:  # setup.cfg lists: one value a line
        return "".join(f"\n    {v}" for v in values) + "\n"

    (work / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths=src/\n"
        "do_not_mutate=" + listed(others) +
        "pytest_add_cli_args_test_selection=" + listed(target.tests) +
        # one test database for every mutant (created once, not per mutant)
        "pytest_add_cli_args=" + listed(["-p", "no:warnings", "--reuse-db"]))
    return work


def mutant_globs(target: Target) -> list[str]:
    module = target.module.removesuffix(".py").replace("/", ".")
    if not target.functions:
        return []
    globs = []
    for name in target.functions:
        cls, _, method = name.rpartition(".") if "." in name else (name, "", "")
        if cls[:1].isupper():  # a class's methods (or one of them), as mutmut names them
            globs.append(f"{module}.x\u01c1{cls}\u01c1{method or '*'}"
                         + ("__mutmut_*" if method else ""))
        else:
            globs.append(f"{module}.x_{name}__mutmut_*")
    return globs


def run(target: Target) -> dict:
    work = prepare(target)
    # Servers that the tests start in subprocesses import the mutants too. The folder
    # exists before Python starts: a path missing then would never be searched.
    (work / "mutants" / "src").mkdir(parents=True)
    env = os.environ | {"PYTHONPATH": str(work / "mutants" / "src"),
                        "SAHAB_TEST_DB": os.environ.get("SAHAB_TEST_DB", "postgres")}
    # A mutant can loop allocating forever: 6 GB of address space at most per process.
    uv = ["prlimit", f"--as={6 * 1024**3}", "uv", "run", "--project", str(ROOT), "--frozen",
          "--extra", "dev", "--with", MUTMUT, "mutmut"]
    log = work / "mutmut.log"
    with open(log, "w") as out:
        subprocess.run([*uv, "run", "--max-children", "1", *mutant_globs(target)],
                       cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    results = subprocess.run([*uv, "results", "--all", "true"], cwd=work, env=env,
                             capture_output=True, text=True, check=False).stdout
    return summarise(target, results)


def summarise(target: Target, results: str) -> dict:
    """Counts per status from ``mutmut results --all true`` lines ``name: status``."""
    statuses: dict[str, list[str]] = {}
    for line in results.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            statuses.setdefault(status, []).append(name)
    globs = mutant_globs(target)
    if globs:
        import fnmatch

        statuses = {s: [n for n in names if any(fnmatch.fnmatch(n, g) for g in globs)]
                    for s, names in statuses.items()}
    return {"target": target.name, "module": target.module,
            "functions": list(target.functions), "tests": list(target.tests),
            "counts": {s: len(n) for s, n in statuses.items() if n},
            "survived": sorted(statuses.get("survived", []))}


def report(summaries: list[dict]) -> str:
    lines = ["| target | module (functions) | killed | survived | other |",
             "| --- | --- | --- | --- | --- |"]
    for s in summaries:
        counts = dict(s["counts"])
        killed, survived = counts.pop("killed", 0), counts.pop("survived", 0)
        other = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "—"
        scope = s["module"] + (f" ({', '.join(s['functions'])})" if s["functions"] else "")
        lines.append(f"| {s['target']} | {scope} | {killed} | {survived} | {other} |")
    for s in summaries:
        if s["survived"]:
            lines += ["", f"Surviving in {s['target']}:", *(f"- `{n}`" for n in s["survived"])]
    return "\n".join(lines) + "\n"


def main(names: list[str]) -> int:
    chosen = [t for t in TARGETS if not names or t.name in names]
    summaries = [run(t) for t in chosen]
    out = ROOT / "var" / "mutation"
    (out / "report.json").write_text(json.dumps(summaries, indent=2))
    (out / "report.md").write_text(report(summaries))
    print(report(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
