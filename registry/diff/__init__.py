"""Comparing two compiled schemas: every change, where it is, and whom it breaks.

Both sides are ``FileDescriptorSet`` images (``buf build --as-file-descriptor-set``).
Only the registry's own files are compared; imported well-known and vendored files
(``google.*``, ``buf.validate``) resolve type names and custom options, nothing else.

Every change has a kind, and :data:`registry.diff.rules.RULES` (the one table,
rendered into ``docs/review-rules.md``) says whom that kind breaks: the wire format,
JSON, generated code (as buf's FILE rules judge it), or clients' requests. One
module walks each kind of element:

* :mod:`~registry.diff.files`: files and packages
* :mod:`~registry.diff.messages` and :mod:`~registry.diff.fields`: messages, oneofs, fields
* :mod:`~registry.diff.enums`: enums and their values
* :mod:`~registry.diff.services`: services and methods
* :mod:`~registry.diff.extensions`: extensions, file-level and message-level
* :mod:`~registry.diff.reserved`: reserved numbers and names
* :mod:`~registry.diff.options`, :mod:`~registry.diff.limits`, :mod:`~registry.diff.routes`:
  options, ``buf.validate`` limits and ``google.api.http`` routes of any element

Elements are matched across the two sides by full name; fields and enum values by
name and number together, then by name alone (a changed number), then by number
alone (a rename). A message, enum or service renamed shows up as removed plus
added. When a file's package changes, its types are matched under their new
names, so the one ``package_changed`` change stands for all of them.
"""

from registry.diff.change import Change, Side, Verdict
from registry.diff.engine import diff_schemas, load_image
from registry.diff.rules import RULES, Rule, deliberate_differences

__all__ = [
    "RULES",
    "Change",
    "Rule",
    "Side",
    "Verdict",
    "deliberate_differences",
    "diff_schemas",
    "load_image",
]
