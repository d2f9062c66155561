"""Direct preference losses on (policy, reference) log-prob pairs, under TRL's ``loss_type`` names and meanings."""

from __future__ import annotations
