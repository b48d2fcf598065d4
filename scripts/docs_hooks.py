"""MkDocs hook: `<!-- options -->` in a page becomes the reference of every option, generated from the
constructors and schemas (seq2seq.training.config.options_reference), so the docs cannot drift from the code."""

MARK = "<!-- options -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARK not in markdown:
        return markdown
    from seq2seq.training.config import options_reference

    return markdown.replace(MARK, options_reference())
