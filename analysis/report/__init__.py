"""What reviewers read: Markdown/LaTeX tables (:mod:`.tables`), the run and cross-validation report
figures (:mod:`.reports`), the per-class page views (:mod:`.class_page`), the per-class dossier
(:mod:`.dossier`) and the ``python -m analysis`` commands (:mod:`.cli`). Never imports
:mod:`analysis.notebook` (nothing here trains)."""
