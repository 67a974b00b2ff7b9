"""The package's API checks that need no server: run with `python -m unittest discover -s python/tests`."""

import asyncio
import logging
import unittest

import grpc

import taskwire
from demo.v1 import demo_pb2
from taskwire import errors

demo = taskwire.service(demo_pb2, "DemoService")


async def echo(request, ctx):
    return demo_pb2.EchoResponse(text=request.text)


class ServiceTest(unittest.TestCase):
    def test_methods_carry_paths_and_classes(self):
        self.assertEqual(demo.Echo.path, "/demo.v1.DemoService/Echo")
        self.assertIs(demo.Echo.input_class, demo_pb2.EchoRequest)
        self.assertIs(demo.Sleep.output_class, demo_pb2.SleepResponse)
        self.assertEqual([m.name for m in demo], ["Echo", "Sleep", "Fail"])

    def test_unknown_names_are_named(self):
        with self.assertRaisesRegex(ValueError, "has no service 'Nope' \\(it has DemoService\\)"):
            taskwire.service(demo_pb2, "Nope")
        with self.assertRaisesRegex(AttributeError, "demo.v1.DemoService has no method 'Ech'"):
            demo.Ech  # noqa: B018

    def test_pack_and_unpack_check_types(self):
        packed = demo.Echo.pack_input(demo_pb2.EchoRequest(text="x"))
        self.assertEqual(packed.type_url, "type.googleapis.com/demo.v1.EchoRequest")
        self.assertEqual(demo.Echo.unpack_input(packed).text, "x")
        with self.assertRaisesRegex(TypeError, "the input of /demo.v1.DemoService/Echo is a SleepRequest, expected demo.v1.EchoRequest"):
            demo.Echo.pack_input(demo_pb2.SleepRequest())
        with self.assertRaisesRegex(TypeError, "has type type.googleapis.com/demo.v1.EchoRequest, expected type.googleapis.com/demo.v1.SleepRequest"):
            demo.Sleep.unpack_input(packed)


class WorkerSettingsTest(unittest.TestCase):
    def test_bad_settings_say_what_to_fix(self):
        with self.assertRaisesRegex(ValueError, "slots must be an int from 1 to 10000, got 0"):
            taskwire.Worker("127.0.0.1:1", slots=0)
        with self.assertRaisesRegex(ValueError, "server must be the server's address"):
            taskwire.Worker("")
        with self.assertRaisesRegex(ValueError, "grace must be seconds >= 0"):
            taskwire.Worker("127.0.0.1:1", grace=-1)

    def test_a_handler_for_a_method_the_service_lacks_is_refused(self):
        worker = taskwire.Worker("127.0.0.1:1")
        with self.assertRaisesRegex(ValueError, "demo.v1.DemoService has no method Echoo"):
            worker.add_service(demo, {"Echoo": echo})

    def test_run_refuses_to_start_with_a_missing_handler(self):
        worker = taskwire.Worker("127.0.0.1:1")
        worker.add_service(demo, {"Echo": echo, "Fail": echo})
        with self.assertRaisesRegex(ValueError, "no handler for /demo.v1.DemoService/Sleep"):
            asyncio.run(worker.run())

    def test_run_refuses_to_start_with_no_task_types(self):
        with self.assertRaisesRegex(ValueError, "no task types"):
            asyncio.run(taskwire.Worker("127.0.0.1:1").run())

    def test_a_servicer_like_object_serves_its_methods(self):
        class Handlers:
            async def Echo(self, request, ctx):
                return demo_pb2.EchoResponse()

        worker = taskwire.Worker("127.0.0.1:1")
        worker.add_service(demo, Handlers())
        with self.assertRaisesRegex(ValueError, "no handler for /demo.v1.DemoService/Fail, /demo.v1.DemoService/Sleep"):
            asyncio.run(worker.run())


class ContextTest(unittest.TestCase):
    def test_the_logger_names_the_attempt(self):
        logger = logging.getLogger("taskwire.test")
        ctx = taskwire.Context("t1", 2, 3, "/demo.v1.DemoService/Echo", "default", None, {}, logger, lambda *a: None)
        with self.assertLogs(logger, level="INFO") as logs:
            ctx.logger.info("resizing %s", "x.png")
        self.assertEqual(logs.records[0].getMessage(), "[t1#2] resizing x.png")
        self.assertEqual((logs.records[0].task_id, logs.records[0].attempt), ("t1", 2))

    def test_progress_goes_to_the_worker_and_cancel_is_seen(self):
        reports = []
        ctx = taskwire.Context("t1", 1, 1, "/x", "q", None, {}, logging.getLogger("t"), lambda *a: reports.append(a))
        ctx.progress(50, "half")
        self.assertEqual(reports, [("t1", 1, 50.0, "half")])
        self.assertFalse(ctx.cancelled)
        self.assertFalse(ctx.wait_cancelled(0))
        ctx._cancel("stop")
        self.assertTrue(ctx.cancelled and ctx.wait_cancelled(0))
        self.assertEqual(ctx.cancel_reason, "stop")


class ErrorsTest(unittest.TestCase):
    def test_codes_from_grpc_or_numbers(self):
        self.assertEqual(taskwire.TaskError("x", grpc.StatusCode.INVALID_ARGUMENT).code, 3)
        self.assertEqual(taskwire.TaskError("x", 9, retryable=False).code, 9)
        with self.assertRaisesRegex(ValueError, "code must be a grpc.StatusCode or an int 0..16"):
            taskwire.TaskError("x", 99)
        self.assertEqual(errors.code_number(grpc.StatusCode.INTERNAL), errors.INTERNAL)


class ClientTest(unittest.TestCase):
    def test_submit_checks_the_input_type_before_any_call(self):
        with taskwire.Client("127.0.0.1:1") as client:
            with self.assertRaisesRegex(TypeError, "expected demo.v1.EchoRequest"):
                client.submit(demo.Echo, demo_pb2.SleepRequest())
            with self.assertRaisesRegex(TypeError, "expected demo.v1.EchoRequest"):
                client.call(demo.Echo, demo_pb2.SleepRequest())


class AsyncClientTest(unittest.TestCase):
    def test_submit_checks_the_input_type_before_any_call(self):
        async def main():
            async with taskwire.AsyncClient("127.0.0.1:1") as client:
                with self.assertRaisesRegex(TypeError, "expected demo.v1.EchoRequest"):
                    await client.submit(demo.Echo, demo_pb2.SleepRequest())
                with self.assertRaisesRegex(TypeError, "expected demo.v1.EchoRequest"):
                    await client.call(demo.Echo, demo_pb2.SleepRequest())

        asyncio.run(main())


class OptionsTest(unittest.TestCase):
    def test_an_unset_priority_stays_unset_so_the_type_default_holds(self):
        from taskwire.client import _task_options

        unset = _task_options(None, None, None, None, None, None, None, "key", None)
        self.assertFalse(unset.HasField("priority"))
        zero = _task_options(None, 0, None, None, None, None, None, None, None)
        self.assertTrue(zero.HasField("priority"))
        self.assertEqual(zero.priority, 0)


if __name__ == "__main__":
    unittest.main()
