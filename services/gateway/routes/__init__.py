"""HTTP routes, one module per resource family; each exports ``ROUTES``.

Every route declares the least role allowed to call it in ``opt={"role": ...}``
(``viewer`` < ``operator`` < ``admin``); ``public`` routes need no credentials.
"""
