"""Compare a runtime's outputs with the PyTorch reference: names, shapes, values."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import ParityError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutputCheck:
    name: str
    expected_shape: tuple[int, ...]
    got_shape: tuple[int, ...]
    max_abs_diff: float
    atol: float
    same_top1: bool

    @property
    def ok(self) -> bool:
        return (
            self.expected_shape == self.got_shape
            and self.max_abs_diff <= self.atol
            and self.same_top1
        )


@dataclass(frozen=True, slots=True)
class ParityReport:
    checks: list[OutputCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.checks)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)

    def describe(self) -> str:
        parts = [*self.problems]
        for c in self.checks:
            parts.append(
                f"{c.name}: shape {c.got_shape} (expected {c.expected_shape}), max |diff| "
                f"{c.max_abs_diff:.3g} (atol {c.atol:g}), "
                f"top-1 {'same' if c.same_top1 else 'DIFFERS'}"
            )
        return "; ".join(parts)


def compare_outputs(
    expected: dict[str, NDArray[np.float32]],
    got: dict[str, NDArray[np.float32]],
    *,
    atol: float,
    source: str,
) -> ParityReport:
    """Check every expected output is present with its shape and values; raise ``ParityError``."""
    problems = [f"output {name!r} missing" for name in expected if name not in got]
    problems += [f"unexpected output {name!r}" for name in got if name not in expected]
    checks = []
    for name, ref in expected.items():
        if name not in got:
            continue
        out = got[name]
        same_shape = ref.shape == out.shape
        diff = float(np.abs(ref - out).max()) if same_shape else float("inf")
        top1 = same_shape and bool((ref.argmax(-1) == out.argmax(-1)).all())
        checks.append(OutputCheck(name, ref.shape, out.shape, diff, atol, top1))
        logger.info("%s: output %r max |diff| %.3g", source, name, diff)
    report = ParityReport(checks, problems)
    if not report.ok:
        raise ParityError(f"{source}: disagrees with PyTorch: {report.describe()}")
    return report
