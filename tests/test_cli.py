"""The command line's own behaviour: exit codes, messages, help texts, interrupts."""

import os

import torch

from trainwise.cli import main
from trainwise.config import from_dict, to_toml


class RunsCode:  # a tampered checkpoint: unpickling it with weights_only=False would run code
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _run_folder(tmp_path, checkpoint_bytes):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = from_dict({"data": {"source": "digits"}, "run": {"out_dir": str(tmp_path)}})
    (run / "config.toml").write_text(to_toml(config))
    (run / "checkpoints/last.pt").write_bytes(checkpoint_bytes)
    return run


def test_damaged_or_tampered_checkpoint_exits_1_with_a_clean_message(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "trainwise-checkpoint", "w": torch.ones(2)}, tmp_path / "whole.pt")
    truncated = (tmp_path / "whole.pt").read_bytes()[:300]
    torch.save({"format": "trainwise-checkpoint", "w": RunsCode()}, tmp_path / "tampered.pt")
    tampered = (tmp_path / "tampered.pt").read_bytes()
    for payload, cause in ((truncated, "failed finding central directory"),
                           (tampered, "unsupported GLOBAL")):
        run = _run_folder(tmp_path / str(len(payload)), payload)
        assert main(["run", "--resume", str(run), "--no-report"]) == 1  # 2 means a bad config
        message = " ".join(capsys.readouterr().err.split())
        assert "damaged or not a trainwise checkpoint" in message
        assert "point --resume at another run folder" in message
        assert cause in message and "weights_only" not in message
    assert not (tmp_path / "PWNED").exists()
