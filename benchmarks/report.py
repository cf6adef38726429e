"""The results table every benchmark prints: metric, value, target, PASS/FAIL."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    """Lines of one table: (metric, value, target, verdict or '')."""

    title: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        """A row; ``ok`` None for a row with no target."""
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append((metric, value, target, verdict))

    @property
    def failed(self) -> bool:
        """Whether any row missed its target."""
        return any(row[3] == "FAIL" for row in self.rows)

    def print(self) -> None:
        """The table, columns aligned."""
        header = ("metric", "value", "target", "result")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(4)]
        print(f"\n== {self.title}")
        for row in [header, *self.rows]:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
