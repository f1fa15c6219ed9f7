from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GradeRequest(_message.Message):
    __slots__ = ("id", "choices", "response", "finish_reason")
    class ChoicesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    choices: _containers.ScalarMap[str, str]
    response: str
    finish_reason: str
    def __init__(self, id: _Optional[str] = ..., choices: _Optional[_Mapping[str, str]] = ..., response: _Optional[str] = ..., finish_reason: _Optional[str] = ...) -> None: ...

class GradeResponse(_message.Message):
    __slots__ = ("id", "pred", "method")
    ID_FIELD_NUMBER: _ClassVar[int]
    PRED_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    id: str
    pred: str
    method: str
    def __init__(self, id: _Optional[str] = ..., pred: _Optional[str] = ..., method: _Optional[str] = ...) -> None: ...

class GradeBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[GradeRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[GradeRequest, _Mapping]]] = ...) -> None: ...

class GradeBatchResult(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GradeResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[GradeResponse, _Mapping]]] = ...) -> None: ...
