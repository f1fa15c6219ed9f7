"""Generated gRPC/protobuf code for the anesbench.v1 API. Do not edit.

Sources: proto/anesbench/v1/*.proto. Regenerate with `python scripts/gen_protos.py`
(grpcio-tools 1.81.1).
"""
