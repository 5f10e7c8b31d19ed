"""An evaluator of the FOCUS 1.2 machine-readable rule model (model-1.2.json).

It runs every static MUST / MUST NOT rule whose applicability criteria the dataset's
provider declares, on a CSV file as FOCUS tools read it (empty cell = null). Dynamic
rules (uniqueness over time, invoice matching…) need data outside the file and are
listed as not checkable; composite rules pass when all the rules they name pass.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

# The FinOps Foundation's rule model and currency list, copied from the FOCUS 1.2 release.
DATA = Path(__file__).resolve().parent / "focus"
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
NUMERIC = re.compile(r"^-?\d+(\.\d+)?(E-?\d+)?$")
UNIT = re.compile(r"^(\d+ )?[A-Z][A-Za-z]*(-[A-Z][A-Za-z]*)?(/(\d+ )?[A-Z][A-Za-z]*)?$")
ENFORCED = {"MUST", "MUST NOT"}


def shared_file(name: str) -> Path:
    return DATA / name


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_applicable: list[str] = field(default_factory=list)
    not_checkable: list[str] = field(default_factory=list)


class Dataset:
    def __init__(self, path: Path):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            self.columns = list(reader.fieldnames or [])
            self.rows = [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError):
        return None


class Model:
    def __init__(self, supported: set[str]):
        model = json.loads(shared_file("model-1.2.json").read_text())
        self.rules: dict = model["ModelRules"]
        self.supported = supported
        with open(shared_file("currency_codes.csv"), newline="") as f:
            self.currencies = {cell.strip() for row in csv.reader(f) for cell in row if cell}

    def applicable(self, rule: dict) -> bool:
        return all(c in self.supported for c in rule.get("ApplicabilityCriteria") or [])

    # --- check functions on one row (None: the function is dataset-level) --------------

    def row_check(self, spec: dict, row: dict, data: Dataset) -> bool:
        fn = spec["CheckFunction"]
        col = spec.get("ColumnName")
        value = row.get(col) if col else None
        if fn == "AND":
            return all(self.row_check(i, row, data) for i in spec["Items"])
        if fn == "OR":
            return any(self.row_check(i, row, data) for i in spec["Items"])
        if fn == "CheckValue":
            return value == spec["Value"]
        if fn == "CheckNotValue":
            return value != spec["Value"]
        if fn == "CheckSameValue":
            return row.get(spec["ColumnAName"]) == row.get(spec["ColumnBName"])
        if fn == "CheckNotSameValue":
            return row.get(spec["ColumnAName"]) != row.get(spec["ColumnBName"])
        if value is None and fn not in ("ColumnByColumnEqualsColumnValue",):
            return True  # format and type rules apply to values, nullability rules to nulls
        if fn in ("CheckDecimalValue", "TypeDecimal"):
            return _decimal(value) is not None
        if fn == "CheckGreaterOrEqualThanValue":
            number = _decimal(value)
            return number is not None and number >= Decimal(str(spec["Value"]))
        if fn in ("TypeString", "FormatString"):
            return isinstance(value, str) and value == value.strip()
        if fn in ("FormatDateTime", "TypeDateTime"):
            return bool(DATETIME.match(value))
        if fn == "FormatNumeric":
            return bool(NUMERIC.match(value))
        if fn == "FormatUnit":
            return bool(UNIT.match(value))
        if fn in ("FormatCurrency", "CheckNationalCurrency"):
            return value in self.currencies
        if fn == "FormatKeyValue":
            try:
                parsed = json.loads(value)
            except ValueError:
                return False
            return isinstance(parsed, dict) and all(
                not isinstance(v, (dict, list)) for v in parsed.values())
        if fn == "ColumnByColumnEqualsColumnValue":
            a, b = _decimal(row.get(spec["ColumnAName"])), _decimal(row.get(spec["ColumnBName"]))
            result = _decimal(row.get(spec["ResultColumnName"]))
            if a is None or b is None:
                return True
            return result is not None and abs(a * b - result) <= Decimal("0.000001")
        if fn == "CheckModelRule":
            return True  # composites are handled at rule level
        raise NotImplementedError(fn)

    # --- rules ----------------------------------------------------------------------------

    def evaluate(self, rule_id: str, data: Dataset, memo: dict) -> bool | None:
        """True/False, or None when the rule does not apply or cannot be checked here."""
        if rule_id in memo:
            return memo[rule_id]
        rule = self.rules[rule_id]
        memo[rule_id] = None
        criteria = rule["ValidationCriteria"]
        requirement = criteria.get("Requirement") or {}
        if not self.applicable(rule) or criteria.get("Keyword") not in ENFORCED:
            return None
        if rule["Type"] == "Dynamic" or not requirement:
            return None
        if requirement.get("CheckFunction") == "AND" and all(
                i.get("CheckFunction") == "CheckModelRule" for i in requirement["Items"]):
            results = [self.evaluate(i["ModelRuleId"], data, memo) for i in requirement["Items"]]
            memo[rule_id] = all(r is not False for r in results)
            return memo[rule_id]
        if requirement.get("CheckFunction") == "ColumnPresent":
            memo[rule_id] = requirement["ColumnName"] in data.columns
            return memo[rule_id]
        if requirement.get("CheckFunction") == "CheckDistinctCount":
            groups: dict = {}
            for row in data.rows:
                groups.setdefault(row.get(requirement["ColumnAName"]), set()).add(
                    row.get(requirement["ColumnBName"]))
            memo[rule_id] = all(len(v) == int(requirement["ExpectedCount"])
                                for v in groups.values())
            return memo[rule_id]
        column = rule.get("Reference")
        if rule["EntityType"] == "Column" and column not in data.columns:
            return None  # a column's rules apply when the column is present
        condition = criteria.get("Condition") or {}
        memo[rule_id] = all(self.row_check(requirement, row, data) for row in data.rows
                            if not condition or self.row_check(condition, row, data))
        return memo[rule_id]

    def check(self, path: Path) -> Report:
        data = Dataset(path)
        report = Report()
        memo: dict = {}
        for rule_id, rule in self.rules.items():
            result = self.evaluate(rule_id, data, memo)
            if result is None:
                if rule["Type"] == "Dynamic" and self.applicable(rule) and \
                        rule["ValidationCriteria"].get("Keyword") in ENFORCED:
                    report.not_checkable.append(rule_id)
                else:
                    report.not_applicable.append(rule_id)
            elif result:
                report.checked.append(rule_id)
            else:
                report.failed[rule_id] = rule["ValidationCriteria"]["MustSatisfy"]
        return report
