"""The shipped twin: a foundation core trained across sessions on seeded virtual mice, shipped in ``models/``.

* :mod:`~twinlab.shipped.cohort`: the two seeded cohorts (foundation mice, held-out new mice),
  recorded several mice at a time, identically in every session;
* :mod:`~twinlab.shipped.job`: one call of the job (record, continue the core, transfer, score,
  write the files back), :func:`run_job`;
* :mod:`~twinlab.shipped.card`: the model card (``twin.json`` + ``TWIN_CARD.md``), issue 17's bar;
* :mod:`~twinlab.shipped.chain`: where a call continues from (committed files or the machine's);
* :mod:`~twinlab.shipped.measure`: Fig. 4 numbers and own-test CC_norm;
* :mod:`~twinlab.shipped.fig3`: the Fig. 3 call (transfer vs individual twins).

``scripts/gpu_shipped_twin.py`` runs one call on the GPU machine; docs/shipped_twin.md says how
the files travel from session to session.
"""

from .card import BAR, bar_checks, card_markdown, check_outputs, fig4_numbers, new_card, read_card
from .job import QUICK, JobSettings, combine_twins, run_job

__all__ = ["BAR", "QUICK", "JobSettings", "bar_checks", "card_markdown", "check_outputs", "combine_twins",
           "fig4_numbers", "new_card", "read_card", "run_job"]
