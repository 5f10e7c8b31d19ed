"""``sahab cloud``: the FOCUS export and the metering run from the command line."""

import datetime as dt

from django.utils import timezone

from sahab import cli
from sahab.cloud import services
from sahab.cloud.models import Instance


def test_focus_export_and_meter_from_the_command_line(market, tmp_path, capsys):
    services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    market.work(rounds=3)
    Instance.objects.update(activated_at=timezone.now() - dt.timedelta(hours=30))
    assert cli.main(["cloud", "meter", "--quiet"]) == 0
    assert "hourly usage records created" in capsys.readouterr().out
    out = tmp_path / "focus.csv"
    assert cli.main(["cloud", "focus-export", "--out", str(out), "--quiet",
                     "--administration", market.mf.code]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("BilledCost,") and len(lines) >= 2
    assert cli.main(["cloud", "focus-export", "--out", str(out), "--quiet",
                     "--administration", "NOPE"]) == 2
    assert cli.main(["cloud", "focus-export", "--out", str(out), "--since", "yesterday"]) == 2
    assert "--since must be a date" in capsys.readouterr().err
    assert cli.main(["cloud", "focus-export", "--out", str(tmp_path / "no" / "x.csv"),
                     "--quiet"]) == 2
