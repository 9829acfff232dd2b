import io

from slowfast_deploy.cli._progress import progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_bar_on_a_terminal_shows_rate_eta_and_failures(monkeypatch):
    err = FakeTTY()
    monkeypatch.setattr("sys.stderr", err)
    bar = progress(range(3), total=3, desc="evaluate", quiet=False)
    for i in bar:
        if i == 1:
            bar.set_postfix(failed=1)
    bar.close()
    text = err.getvalue()
    assert "evaluate" in text and "3/3" in text
    assert "video/s" in text and "failed=1" in text
    assert "<" in text  # tqdm's elapsed<remaining (ETA)


def test_quiet_or_not_a_terminal_prints_nothing(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress(range(3), total=3, desc="x", quiet=False)) == [0, 1, 2]
    tty = FakeTTY()
    monkeypatch.setattr("sys.stderr", tty)
    assert list(progress(range(3), total=3, desc="x", quiet=True)) == [0, 1, 2]
    assert err.getvalue() == "" and tty.getvalue() == ""
