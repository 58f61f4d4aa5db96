"""The one module that touches OpenDP (an import-linter contract keeps it so).

Two mechanisms, both OpenDP's, whose noise comes from OpenDP's cryptographically secure sampler
(never Python's ``random``), and whose privacy cost is read from OpenDP's own privacy maps rather
than from arithmetic of ours:

* ``threshold_counts``: noisy counts of groups whose keys come from the data, releasing only groups
  whose noisy count reaches a threshold (Laplace noise, propose-test-release; Rogers 2023). The
  threshold is the larger of the k of small-group suppression and the one that keeps delta (the
  chance that a group made of a single interaction shows at all) under the configured bound, so
  suppression is decided on noisy counts and does not itself leak.
* ``noisy_vector``: Laplace noise on a vector of integer sums whose L1 sensitivity (what one
  interaction can change in total) the caller states: histograms (1), SLA on-time/late pairs (1),
  rating count and sum (1 + 4).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import opendp.prelude as dp

dp.enable_features("contrib")  # OpenDP's measurements are "contrib" until their proofs are vetted

# One interaction changes at most one group's count, by one: (l0, l1, linf) = (1, 1, 1).
ONE_RECORD = (1, 1, 1)


@dataclass(frozen=True)
class Cost:
    """What a release spent: pure epsilon and the delta of approximate DP."""

    epsilon: float
    delta: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        """Basic sequential composition."""
        return Cost(self.epsilon + other.epsilon, self.delta + other.delta)


@functools.lru_cache(maxsize=64)
def _threshold(scale: float, k: int, delta: float) -> tuple[int, float, float]:
    """The smallest threshold >= k whose delta is within ``delta``, and its (epsilon, delta)."""
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    threshold = max(k, 1)
    # the bound: a lone record passes with probability about exp(-(t-1)/scale)/2
    guess = 1 + math.ceil(scale * math.log(1 / (2 * delta)))
    threshold = max(threshold, guess - 2)
    while True:
        measurement = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)
        eps, dlt = measurement.map(ONE_RECORD)  # type: ignore[no-untyped-call]
        if dlt <= delta:
            return threshold, float(eps), float(dlt)
        threshold += 1


def threshold_for(epsilon: float, k: int, delta: float) -> int:
    """The threshold ``threshold_counts`` uses for these parameters (shown to analysts)."""
    return _threshold(1.0 / epsilon, k, delta)[0]


def threshold_counts(counts: Mapping[str, int], epsilon: float, k: int, delta: float) -> tuple[dict[str, int], Cost]:
    """Noisy counts of the groups whose noisy count reaches the threshold; the others are dropped."""
    scale = 1.0 / epsilon
    threshold, eps, dlt = _threshold(scale, k, delta)
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    measurement = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)
    released = measurement({key: int(value) for key, value in counts.items() if value > 0})
    return {str(key): int(value) for key, value in released.items()}, Cost(eps, dlt)


def noisy_vector(values: Sequence[int], sensitivity: int, epsilon: float) -> tuple[list[int], Cost]:
    """``values`` with Laplace noise of scale sensitivity/epsilon (one interaction moves them by at
    most ``sensitivity`` in L1 across the whole vector)."""
    domain = dp.vector_domain(dp.atom_domain(T=int))
    measurement = dp.m.make_laplace(domain, dp.l1_distance(T=int), scale=sensitivity / epsilon)
    cost = Cost(float(measurement.map(sensitivity)))  # type: ignore[no-untyped-call]
    if not values:
        return [], cost
    return [int(v) for v in measurement([int(v) for v in values])], cost


def noisy_count(value: int, epsilon: float) -> tuple[int, Cost]:
    """One count (sensitivity 1) with Laplace noise."""
    out, cost = noisy_vector([value], 1, epsilon)
    return out[0], cost
