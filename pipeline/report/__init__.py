"""Tables and figures of the reports, drawn from the stages' small JSON summaries."""
