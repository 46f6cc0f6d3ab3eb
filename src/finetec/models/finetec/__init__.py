"""FineTec (Shao et al., AAAI 2026), one module per part of the paper.

| paper | module |
|---|---|
| Context-aware sequence completion, skeleton bank, S_prior, L_ICL (Eq. 14) | ``completion``, ``bank`` |
| Skeleton-based spatial decomposition (Eq. 2-3), S_dyna / S_stat / S_pred | ``decomposition`` |
| Physics-driven acceleration modelling (Eq. 4-13), L_Ac (Eq. 16) | ``physics`` |
| Cross-attention / MLP fusion of S_pred and a | ``fusion`` |
| The recognizer, L = L_CE + lambda L_Ac (Eq. 15-17) | ``model`` (registered as ``finetec``) |
"""

from .model import FineTec, observed_sequences

__all__ = ["FineTec", "observed_sequences"]
