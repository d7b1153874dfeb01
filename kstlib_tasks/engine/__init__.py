"""The engine: from validated specs to backend calls, and from live objects back to statuses.

``places`` knows where a session runs (its backend and scope) and finds it anywhere the tool has
been; ``overrides`` applies one-off flags and backend switches; ``launch`` resolves what exactly
to run (environment, ``$VAR`` expansion, fingerprint); ``drift`` compares what runs with what the
config says now; ``merge`` builds the ``list`` table. ``stack`` (up/down/wait), ``follow``
(``logs -f``) and ``check`` build on them. The verbs for one session are in
:mod:`kstlib_tasks.manager`.
"""
