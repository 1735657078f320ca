"""Book layer: what turns the runs' tables into the book's chapters.

``narrative`` (the generated sentences, comparative words picked from intervals), ``figures`` (the chapters'
figures), ``reproduction`` (the seed claims and their verdicts), ``course`` (the teaching notebooks' helpers and
the student copy).

May import: every layer below it; never ``advxai.runner``."""
