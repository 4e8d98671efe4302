"""pprof's profile format (package ``perftools.profiles``): ``profile_pb2``, written by the ``pprof``
extension. Generated from protos/pprof."""
