"""Task types from generated stubs: each method of a proto service is one task type."""

from types import ModuleType
from typing import Dict, Iterator, Optional, Type, Union

from google.protobuf import any_pb2, symbol_database
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

TYPE_URL_PREFIX = "type.googleapis.com/"


def message_class(descriptor) -> Type[Message]:
    """The generated class of a message descriptor (its _pb2 module must be imported)."""
    return symbol_database.Default().GetSymbol(descriptor.full_name)


class Method:
    """One task type: the method path and its request and response classes."""

    def __init__(self, descriptor: MethodDescriptor):
        if descriptor.client_streaming or descriptor.server_streaming:
            raise ValueError(f"{descriptor.full_name} is a streaming method: a task type must be unary")
        self.descriptor = descriptor
        self.name = descriptor.name
        self.path = f"/{descriptor.containing_service.full_name}/{descriptor.name}"
        self.input_class = message_class(descriptor.input_type)
        self.output_class = message_class(descriptor.output_type)

    def __repr__(self) -> str:
        return f"Method({self.path})"

    def pack_input(self, request: Message) -> any_pb2.Any:
        return pack(self.input_class, request, f"the input of {self.path}")

    def pack_output(self, response: Message) -> any_pb2.Any:
        return pack(self.output_class, response, f"the handler of {self.path} returned a value that")

    def unpack_input(self, packed: any_pb2.Any) -> Message:
        return unpack(self.input_class, packed, f"the input of {self.path}")

    def unpack_output(self, packed: any_pb2.Any) -> Message:
        return unpack(self.output_class, packed, f"the output of {self.path}")


class Service:
    """The task types of one generated service, by method name: `Service(...).Echo`."""

    def __init__(self, descriptor: ServiceDescriptor):
        if not isinstance(descriptor, ServiceDescriptor):
            raise TypeError(
                "expected a ServiceDescriptor, e.g. demo_pb2.DESCRIPTOR.services_by_name['DemoService'], "
                f"got {type(descriptor).__name__}"
            )
        self.descriptor = descriptor
        self.full_name = descriptor.full_name
        self.methods: Dict[str, Method] = {m.name: Method(m) for m in descriptor.methods}

    def __getattr__(self, name: str) -> Method:
        methods = self.__dict__.get("methods", {})
        if name in methods:
            return methods[name]
        raise AttributeError(f"{self.__dict__.get('full_name')} has no method {name!r} (it has {', '.join(methods)})")

    def __iter__(self) -> Iterator[Method]:
        return iter(self.methods.values())

    def __repr__(self) -> str:
        return f"Service({self.full_name})"


def service(module_or_descriptor: Union[ModuleType, ServiceDescriptor], name: Optional[str] = None) -> Service:
    """`service(demo_pb2, "DemoService")` or `service(demo_pb2.DESCRIPTOR.services_by_name["DemoService"])`."""
    if isinstance(module_or_descriptor, ServiceDescriptor):
        return Service(module_or_descriptor)
    file = getattr(module_or_descriptor, "DESCRIPTOR", None)
    services = getattr(file, "services_by_name", None)
    if services is None:
        raise TypeError(f"expected a generated _pb2 module or a ServiceDescriptor, got {module_or_descriptor!r}")
    if name is None:
        if len(services) != 1:
            raise ValueError(f"{file.name} has {len(services)} services ({', '.join(services)}): name the one you mean")
        name = next(iter(services))
    if name not in services:
        raise ValueError(f"{file.name} has no service {name!r} (it has {', '.join(services) or 'none'})")
    return Service(services[name])


def pack(cls: Type[Message], message: Message, what: str) -> any_pb2.Any:
    if not isinstance(message, cls):
        raise TypeError(f"{what} is a {type(message).__name__}, expected {cls.DESCRIPTOR.full_name}")
    packed = any_pb2.Any()
    packed.Pack(message, type_url_prefix=TYPE_URL_PREFIX)
    return packed


def unpack(cls: Type[Message], packed: any_pb2.Any, what: str) -> Message:
    expected = TYPE_URL_PREFIX + cls.DESCRIPTOR.full_name
    if packed.type_url != expected:
        raise TypeError(f"{what} has type {packed.type_url or '(none)'}, expected {expected}")
    message = cls()
    packed.Unpack(message)
    return message
