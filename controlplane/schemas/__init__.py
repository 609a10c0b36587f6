"""Request and response models, apart from ORM rows (``XCreate`` / ``XUpdate`` / ``XRead``).

Input models forbid unknown fields, so a typo is a 422 naming the field instead of a silently
ignored setting. Read models are built from rows with ``model_validate(row)``.
"""
