"""`wg_netmanager status` shows the faults of issue 15 the status document reports: a data
plane down or restored, a static node's DNS name that does not resolve, dropped status clients."""

from __future__ import annotations

from wg_netmanager.statusfmt import render


def test_the_faults_show_in_the_text_status() -> None:
    doc = {
        "name": "charlie",
        "wgIp": "10.1.1.3",
        "peers": [],
        "dataPlane": {"state": "down", "restores": 1, "problem": "interface wg0 is gone", "downFor": 0.4},
        "resolve": {
            "beta": {"host": "beta.dyn.test", "address": "198.51.100.2", "error": "no answer within 5 s"}
        },
        "statusSocket": {"clients": 0, "dropped": 200},
    }
    text = render(doc, 0.0)
    assert "  data plane: down for 0.4 s (interface wg0 is gone), restored 1 time(s)\n" in text
    assert "  beta: beta.dyn.test does not resolve (no answer within 5 s); keeping 198.51.100.2\n" in text
    assert "  status clients dropped (too slow to read): 200\n" in text
    quiet = {
        **doc,
        "dataPlane": {"state": "up", "restores": 0},
        "resolve": {},
        "statusSocket": {"dropped": 0},
    }
    assert render(quiet, 0.0) == render({"name": "charlie", "wgIp": "10.1.1.3", "peers": []}, 0.0)
