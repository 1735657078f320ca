"""Book layer: what turns the runs' tables into the book's chapters.

``narrative`` (the generated sentences, comparative words picked from intervals), ``style`` (how a number or a
table is written), ``figures`` (the chapters' figures), ``runplots`` / ``detplots`` / ``robustplots`` (what the
stages' own notebooks draw: they import at most ``style``, never the prose, which a run's cache key would then
cover), ``reproduction`` (the seed claims and their verdicts), ``course`` (the teaching notebooks' helpers and
the student copy).

May import: every layer below it; never ``advxai.runner``."""
