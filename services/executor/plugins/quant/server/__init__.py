"""``executor.quant.*`` request/reply: predictions from cached models, trial history and
pipeline templates, served inside executor processes (see ``service``)."""
