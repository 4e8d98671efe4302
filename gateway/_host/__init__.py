"""The host's internals: config loading, the pipeline graph, the service, reload, the CLI and the admin server.

Private: plugins import only what ``gateway`` exports (plus ``gateway.testing``, ``gateway.protos``, ``gateway.ottl``
and ``gateway.prometheus``); anything here may change without notice.
"""
