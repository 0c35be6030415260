"""What reviewers read: Markdown/LaTeX tables (:mod:`.tables`); a run's and a cross-validation
folder's files (:mod:`.run_files`), numbers (:mod:`.results`), figures (:mod:`.figures`) and written
report (:mod:`.reports`); the per-class page views (:mod:`.class_page`), the per-class dossier
(:mod:`.dossier`: its class pages executed by :mod:`.pages`, its index page :mod:`.index_page` from
``templates/``) and the ``python -m analysis`` commands (:mod:`.cli`). Never imports
:mod:`analysis.notebook` (nothing here trains)."""
