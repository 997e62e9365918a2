#!/usr/bin/python3
"""uAMQP (Azure's AMQP 1.0 C stack, Debian python3-uamqp 1.5.3) test client.

Sends COUNT messages to an address and/or receives COUNT from an address, over TLS (amqps) or
AMQP-over-WebSocket-over-TLS (wss), and prints one JSON line on stdout. See README.md here.

Run with /usr/bin/python3 (Debian's; the pyenv python3 on PATH has no uamqp):

  /usr/bin/python3 send_receive.py --url amqps://127.0.0.1:5671 --address q1 --count 5 \
      --ca ca.pem [--cert client.pem --key client-key.pem] [--sasl PLAIN --user u --password p]
"""
import argparse
import ctypes
import json
import logging
import os
import sys
import time
from urllib.parse import urlparse

import uamqp
from uamqp import c_uamqp, constants
from uamqp.address import Source, Target
from uamqp.authentication import SASLAnonymous, SASLPlain
from uamqp.constants import MessageBodyType, MessageState, TransportType


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--url', default='amqps://127.0.0.1:5671',
                   help='amqps://HOST:PORT (TLS) or wss://HOST:PORT (WebSocket over TLS); a path is ignored')
    p.add_argument('--address', required=True, help='address to send to (and to receive from, unless --receive-address)')
    p.add_argument('--receive-address', help='address to receive from (default: --address)')
    p.add_argument('--count', type=int, default=1)
    p.add_argument('--mode', choices=['both', 'send', 'receive'], default='both',
                   help='both: send COUNT, then receive COUNT (default); send; receive')
    p.add_argument('--wire-address', choices=['url', 'bare'], default='url',
                   help="url (uAMQP's own behaviour): the link's target/source address is "
                        "'<scheme>://<host>/<address>' (no port); bare: just '<address>'")
    p.add_argument('--ca', help='CA file (PEM) to verify the server with; default: certifi\'s public bundle')
    p.add_argument('--cert', help='client certificate (PEM) for TLS client authentication')
    p.add_argument('--key', help='client private key (PEM, unencrypted) for --cert')
    p.add_argument('--sasl', choices=['ANONYMOUS', 'PLAIN'], default='ANONYMOUS')
    p.add_argument('--user', help='SASL PLAIN authcid')
    p.add_argument('--password', help='SASL PLAIN password')
    p.add_argument('--hostname', help="host in the link addresses' URL and in the open frame's hostname (default: the "
                                      "URL's host); TLS still connects to, and checks the certificate against, the URL's host")
    p.add_argument('--body-type', choices=['value', 'data'], default='value',
                   help='value: amqp-value string (default); data: one data section (uAMQP\'s default for str)')
    p.add_argument('--body-prefix', default='message-')
    p.add_argument('--timeout', type=float, default=10, help='seconds for the whole run (default 10)')
    p.add_argument('--ws-path', default=None, help='WebSocket resource (default: uAMQP\'s /$servicebus/websocket/)')
    p.add_argument('--ws-protocol', default=None, help='WebSocket subprotocol (default: uAMQP\'s AMQPWSB10)')
    p.add_argument('--container-id', default=None, help='container-id of the open frame (default: a uuid)')
    p.add_argument('--debug', action='store_true', help="uAMQP's frame trace on stderr")
    a = p.parse_args()
    if (a.cert is None) != (a.key is None):
        p.error('--cert and --key go together')
    if a.sasl == 'PLAIN' and (a.user is None or a.password is None):
        p.error('--sasl PLAIN needs --user and --password')
    return a


# ------------------------------------------------------------------------------------------------
# TLS client certificates. uAMQP's Python layer has no option for them: XIO.set_option() passes the
# Python object's address instead of the string's bytes. The C layer (azure-c-shared-utility's
# tlsio_openssl) does support them through xio_setoption("x509certificate" / "x509privatekey", PEM
# text), so we call that through ctypes on the XIO handle of the auth object's TLS (or WebSocket) IO.

_lib = ctypes.CDLL(c_uamqp.__file__)
_lib.xio_setoption.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_lib.xio_setoption.restype = ctypes.c_int
_lib.tlsio_openssl_get_interface_description.restype = ctypes.c_void_p
_lib.wsio_get_interface_description.restype = ctypes.c_void_p

# struct __pyx_obj_5uamqp_7c_uamqp_XIO { PyObject_HEAD; vtab*; XIO_HANDLE _c_value; ... } (uamqp 1.5.x)
_XIO_HANDLE_OFFSET = ctypes.sizeof(ctypes.c_ssize_t) + 2 * ctypes.sizeof(ctypes.c_void_p)


def _xio_handle(xio, expect_interface):
    handle = ctypes.c_void_p.from_address(id(xio) + _XIO_HANDLE_OFFSET).value
    # XIO_INSTANCE starts with its IO_INTERFACE_DESCRIPTION*: check we read the right field
    if not handle or ctypes.c_void_p.from_address(handle).value != expect_interface:
        raise RuntimeError('unexpected uamqp XIO layout (uamqp %s): cannot set a client certificate' % uamqp.__version__)
    return handle


def set_client_cert(auth, cert_file, key_file, websocket):
    xio = auth.sasl_client._underlying_io
    iface = _lib.wsio_get_interface_description() if websocket else _lib.tlsio_openssl_get_interface_description()
    handle = _xio_handle(xio, iface)
    with open(cert_file, 'rb') as f:
        cert = f.read() + b'\0'
    with open(key_file, 'rb') as f:
        key = f.read() + b'\0'
    for name, value in ((b'x509certificate', cert), (b'x509privatekey', key)):
        buf = ctypes.create_string_buffer(value)  # copied by xio_setoption
        if _lib.xio_setoption(handle, name, ctypes.cast(buf, ctypes.c_void_p)) != 0:
            raise RuntimeError('xio_setoption(%s) failed' % name.decode())


# ------------------------------------------------------------------------------------------------

class Result:
    def __init__(self):
        self.out = {'sent': 0, 'accepted': 0, 'send_failed': 0, 'received': 0, 'bodies': [], 'body_types': [],
                    'timed_out': False}

    def emit(self, code):
        print(json.dumps(self.out), flush=True)
        sys.exit(code)


def make_auth(a, host, port, websocket):
    # uAMQP's TLS layer connects to `host` and checks the server certificate against it (SNI too)
    transport = TransportType.AmqpOverWebsocket if websocket else TransportType.Amqp
    if a.sasl == 'PLAIN':
        auth = SASLPlain(host, a.user, a.password, port=port, verify=a.ca, transport_type=transport)
    else:
        auth = SASLAnonymous(host, port=port, verify=a.ca, transport_type=transport)
    if a.cert:
        set_client_cert(auth, a.cert, a.key, websocket)
    return auth


def patch_websocket(a):
    """uAMQP's wsio uses /$servicebus/websocket/ and subprotocol AMQPWSB10 (Azure's): allow others."""
    if a.ws_path is None and a.ws_protocol is None:
        return
    from uamqp.authentication import common
    original = c_uamqp.WSIOConfig
    keep = []

    class WSIOConfig(original):  # noqa: N801 (Cython classes can be subclassed)
        def __init__(self, *args, **kwargs):
            super().__init__()
            if a.ws_path is not None:
                v = a.ws_path.encode()
                keep.append(v)
                self.resource_name = v
            if a.ws_protocol is not None:
                v = a.ws_protocol.encode()
                keep.append(v)
                self.protocol = v

    class Shim:
        def __getattr__(self, name):
            return WSIOConfig if name == 'WSIOConfig' else getattr(c_uamqp, name)

    common.c_uamqp = Shim()
    patch_websocket.keep = keep


def endpoint(cls, a, scheme, host, address):
    """The Target/Source uAMQP is given. uAMQP puts 'scheme://host/path' on the wire; 'bare' overrides it."""
    ep = cls('%s://%s/%s' % (scheme, host, address))
    if a.wire_address == 'bare':
        ep._address.address = c_uamqp.string_value(address.encode())
    return ep


def wire_address(ep):
    return ep._address.address.decode() if isinstance(ep._address.address, bytes) else str(ep._address.address)


def body_of(msg):
    t = msg._body.type if msg._body is not None else None
    if t == c_uamqp.MessageBodyType.DataType:
        data = b''.join(msg.get_data())
        return 'data', data.decode('utf-8', 'replace')
    if t == c_uamqp.MessageBodyType.ValueType:
        v = msg._body.data
        if isinstance(v, bytes):
            v = v.decode('utf-8', 'replace')
        return 'value', v if isinstance(v, (str, int, float, bool)) or v is None else repr(v)
    if t == c_uamqp.MessageBodyType.SequenceType:
        return 'sequence', repr(list(msg.get_data()))
    return 'none', None


def main():
    a = parse_args()
    r = Result()
    if a.debug:
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
    u = urlparse(a.url)
    websocket = u.scheme in ('wss', 'amqpwss')
    if u.scheme not in ('amqps', 'wss', 'amqpwss'):
        r.out['error'] = 'uAMQP speaks TLS only: use amqps:// or wss:// (got %r)' % a.url
        r.emit(2)
    host = u.hostname or '127.0.0.1'
    port = u.port or (443 if websocket else 5671)
    # the Target/Source URL's host: uAMQP takes the open frame's hostname from it
    ep_host = a.hostname or host
    deadline = time.monotonic() + a.timeout
    ms_left = lambda: max(1, int((deadline - time.monotonic()) * 1000))  # noqa: E731
    kw = {'debug': a.debug}
    if a.container_id:
        kw['client_name'] = a.container_id
    if websocket:
        kw['transport_type'] = TransportType.AmqpOverWebsocket
        patch_websocket(a)

    sender = receiver = None
    try:
        if a.mode in ('both', 'send'):
            target = endpoint(Target, a, 'amqps', ep_host, a.address)
            r.out['target'] = wire_address(target)
            sender = uamqp.SendClient(target, auth=make_auth(a, host, port, websocket), msg_timeout=ms_left(), **kw)
            sender.open()
            for i in range(a.count):
                body = a.body_prefix + str(i)
                if a.body_type == 'value':
                    m = uamqp.Message(body=body, body_type=MessageBodyType.Value)
                else:
                    m = uamqp.Message(body=body.encode())
                sender.queue_message(m)
            while not sender.client_ready():
                if time.monotonic() > deadline:
                    raise TimeoutError('sender not attached within --timeout')
                sender.do_work()
            states = sender.send_all_messages(close_on_done=False)
            r.out['sent'] = len(states)
            r.out['accepted'] = sum(1 for s in states if s == MessageState.SendComplete)
            r.out['send_failed'] = sum(1 for s in states if s == MessageState.SendFailed)
            sender.close()
            sender = None
        if a.mode in ('both', 'receive'):
            source = endpoint(Source, a, 'amqps', ep_host, a.receive_address or a.address)
            r.out['source'] = wire_address(source)
            receiver = uamqp.ReceiveClient(source, auth=make_auth(a, host, port, websocket),
                                           prefetch=max(1, min(a.count, 300)), auto_complete=False, **kw)
            receiver.open()
            while not receiver.client_ready():
                if time.monotonic() > deadline:
                    raise TimeoutError('receiver not attached within --timeout')
                receiver.do_work()
            print(json.dumps({'event': 'ready', 'source': r.out['source']}), file=sys.stderr, flush=True)
            while r.out['received'] < a.count:
                if time.monotonic() >= deadline:
                    r.out['timed_out'] = True
                    break
                batch = receiver.receive_message_batch(max_batch_size=max(1, min(a.count - r.out['received'], 300)),
                                                       timeout=min(ms_left(), 500))
                for m in batch:
                    kind, body = body_of(m)
                    m.accept()
                    r.out['received'] += 1
                    r.out['bodies'].append(body)
                    r.out['body_types'].append(kind)
            # let the dispositions go out before closing
            for _ in range(5):
                receiver.do_work()
            receiver.close()
            receiver = None
    except Exception as e:  # noqa: BLE001: every failure is reported as JSON
        r.out['error'] = '%s: %s' % (type(e).__name__, e)
        for c in (sender, receiver):
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass
        r.emit(1)
    r.emit(0)


if __name__ == '__main__':
    main()
