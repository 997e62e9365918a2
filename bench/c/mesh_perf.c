/*
 * mesh_perf: AMQP 1.0 throughput / latency load generator for amqp-mesh.
 *
 * Built on the Qpid Proton-C proactor API. One process opens a receiving
 * connection (receiver link on ADDRESS) and, once that link is attached, a
 * sending connection (sender link on ADDRESS), so the traffic can cross a
 * router between the two. It sends N messages whose body is one Data section
 * of B bytes; the first 8 bytes of the body are the send time (CLOCK_MONOTONIC,
 * ns, host byte order) and the next 8 the sequence number. The receiver accepts
 * each message and records receive time - send time; the sender counts the
 * outcomes it gets back.
 *
 *   --mode both     (default) both sides in this process
 *   --mode receive  only the receiver: start it first, it prints
 *                   {"event":"ready"} on stderr when its link is attached
 *   --mode send     only the sender
 * CLOCK_MONOTONIC is system wide on Linux, so latency measured by a separate
 * receive process on the same machine is still valid. One process is enough
 * for the rates a 2-core machine reaches; the split mode exists to put the two
 * sides on separate cores (or hosts' namespaces) when needed.
 *
 * TLS: an amqps:// URL (for either connection) puts that connection over TLS
 * (pn_ssl_domain in client mode); --ssl-ca FILE verifies the server's
 * certificate against FILE, and its name too (--ssl-verify name, the default
 * with a CA; "peer": the certificate only; "none": any server). Without
 * --ssl-ca nothing is checked.
 *
 * Output: one JSON line on stdout (see bench/c/README or --help). Exit 0 when
 * all N messages were received (and, when sending unsettled, all outcomes were
 * counted), 1 on error or timeout (the JSON then has "error"), 2 on bad usage.
 */

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/proactor.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/ssl.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_BODY 16

typedef enum { MODE_BOTH, MODE_SEND, MODE_RECEIVE } mode_t_;

typedef struct {
  /* configuration */
  char send_host[256], send_port[32];
  char recv_host[256], recv_port[32];
  bool send_tls, recv_tls;  /* amqps:// URLs */
  const char *ssl_ca;       /* --ssl-ca: CA file verifying the server */
  pn_ssl_verify_mode_t ssl_verify;
  pn_ssl_domain_t *ssl_domain;
  char tls_protocol[64], tls_cipher[128]; /* of the sending connection, once open */
  const char *address;
  uint64_t messages;
  size_t body_size;
  int credit;
  int window;
  int threads;
  double timeout_s;
  bool sasl;
  bool presettled;
  bool durable;   /* header durable=true on every message */
  mode_t_ mode;

  pn_proactor_t *proactor;
  pthread_mutex_t lock; /* error text, shutdown */

  /* sender side: touched only from events of the sending connection */
  pn_connection_t *sconn;
  pn_link_t *sender;
  uint8_t *msg;         /* pre-encoded message, timestamp patched per send */
  size_t msg_len;
  size_t payload_off;   /* offset of the body bytes in msg */
  uint64_t sent, outcomes, accepted, rejected, released, modified, other;
  uint64_t t_first_send, t_last_outcome, t_last_send;
  bool sender_done;

  /* receiver side: touched only from events of the receiving connection */
  pn_connection_t *rconn;
  pn_link_t *receiver;
  uint8_t *rbuf;
  size_t rbuf_len, rbuf_cap;
  uint64_t received, bad_messages, presettled_in;
  uint64_t *lat_ns;
  uint64_t t_first_recv, t_last_recv, min_send_ts;
  bool receiver_done;
  bool sender_started;

  /* shared */
  bool timed_out;
  bool failed;
  char error[512];
} app_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_error(app_t *app, const char *fmt, ...) {
  pthread_mutex_lock(&app->lock);
  if (!app->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->error, sizeof(app->error), fmt, ap);
    va_end(ap);
    app->failed = true;
  }
  pthread_mutex_unlock(&app->lock);
}

/* Stop everything (error / timeout): the proactor goes INACTIVE once all
   connections are closed and no timeout is pending. */
static void shutdown_all(app_t *app) {
  pn_proactor_cancel_timeout(app->proactor);
  pn_proactor_disconnect(app->proactor, NULL);
}

/* One side finished: close its link, session and connection; when both
   sides are finished cancel the timeout so the proactor can go INACTIVE. */
static void side_done(app_t *app, bool sender_side) {
  pn_link_t *l = sender_side ? app->sender : app->receiver;
  pn_connection_t *c = sender_side ? app->sconn : app->rconn;
  bool both;
  pthread_mutex_lock(&app->lock);
  if (sender_side) app->sender_done = true; else app->receiver_done = true;
  both = app->sender_done && app->receiver_done;
  pthread_mutex_unlock(&app->lock);
  if (l) {
    pn_link_close(l);
    pn_session_close(pn_link_session(l));
  }
  if (c) pn_connection_close(c);
  if (both) pn_proactor_cancel_timeout(app->proactor);
}

/* ---- URL parsing: [amqp://][user@]host[:port][/...] , host may be [v6] ---- */
static int parse_url(const char *url, char *host, size_t hlen, char *port, size_t plen, bool *tls) {
  const char *p = strstr(url, "://");
  *tls = p && (size_t)(p - url) == 5 && !strncmp(url, "amqps", 5);
  p = p ? p + 3 : url;
  const char *at = strchr(p, '@');
  const char *slash = strchr(p, '/');
  if (at && (!slash || at < slash)) p = at + 1;
  const char *end = slash ? slash : p + strlen(p);
  const char *colon = NULL;
  const char *hs = p, *he;
  if (*p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) return -1;
    hs = p + 1;
    he = rb;
    if (rb + 1 < end && rb[1] == ':') colon = rb + 1;
  } else {
    colon = memchr(p, ':', (size_t)(end - p));
    he = colon ? colon : end;
  }
  size_t n = (size_t)(he - hs);
  if (n == 0 || n >= hlen) return -1;
  memcpy(host, hs, n);
  host[n] = 0;
  if (colon) {
    size_t m = (size_t)(end - colon - 1);
    if (m == 0 || m >= plen) return -1;
    memcpy(port, colon + 1, m);
    port[m] = 0;
  } else {
    snprintf(port, plen, "%s", *tls ? "5671" : "5672");
  }
  return 0;
}

/* ---- AMQP encoding helpers ---- */
static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Message = [header durable=true when --durable] then one Data section: 0x00 0x53 0x75 then
 * vbin8/vbin32 of body_size bytes */
static void build_message(app_t *app) {
  size_t b = app->body_size;
  static const uint8_t durable_header[] = {0x00, 0x53, 0x70, 0xc0, 0x02, 0x01, 0x41};
  size_t pre = app->durable ? sizeof durable_header : 0;
  size_t hdr = pre + (b < 256 ? 5 : 8);
  app->msg_len = hdr + b;
  app->msg = malloc(app->msg_len);
  uint8_t *m = app->msg;
  if (pre) memcpy(m, durable_header, pre);
  m += pre;
  m[0] = 0x00; m[1] = 0x53; m[2] = 0x75;
  if (b < 256) { m[3] = 0xa0; m[4] = (uint8_t)b; }
  else { m[3] = 0xb0; put_be32(m + 4, (uint32_t)b); }
  app->payload_off = hdr;
  for (size_t i = 0; i < b; ++i) app->msg[hdr + i] = (uint8_t)('a' + i % 26);
}

/* Size of the encoded value at p (constructor included), or 0 if malformed. */
static size_t value_size(const uint8_t *p, size_t len) {
  if (len < 1) return 0;
  uint8_t c = p[0];
  if (c == 0x00) { /* described: descriptor + value */
    size_t d = value_size(p + 1, len - 1);
    if (!d) return 0;
    size_t v = value_size(p + 1 + d, len - 1 - d);
    return v ? 1 + d + v : 0;
  }
  size_t need;
  switch (c >> 4) {
    case 0x4: need = 1; break;
    case 0x5: need = 2; break;
    case 0x6: need = 3; break;
    case 0x7: need = 5; break;
    case 0x8: need = 9; break;
    case 0x9: need = 17; break;
    case 0xa: case 0xc: case 0xe:
      if (len < 2) return 0;
      need = 2 + (size_t)p[1];
      break;
    case 0xb: case 0xd: case 0xf:
      if (len < 5) return 0;
      need = 5 + (size_t)get_be32(p + 1);
      break;
    default: return 0;
  }
  return need <= len ? need : 0;
}

/* Find the body bytes (first Data section, or an amqp-value binary). */
static const uint8_t *find_body(const uint8_t *p, size_t len, size_t *blen) {
  size_t pos = 0;
  while (pos < len) {
    const uint8_t *s = p + pos;
    size_t rem = len - pos;
    size_t total = value_size(s, rem);
    if (!total || s[0] != 0x00) return NULL;
    uint64_t code = UINT64_MAX;
    size_t dlen = value_size(s + 1, rem - 1);
    if (s[1] == 0x53 && rem > 2) code = s[2];
    else if (s[1] == 0x80 && rem > 9) {
      code = 0;
      for (int i = 0; i < 8; ++i) code = (code << 8) | s[2 + i];
    } else if ((s[1] == 0xa3 || s[1] == 0xb3) && dlen) {
      const char *sym = (const char *)s + (s[1] == 0xa3 ? 3 : 6);
      size_t sl = dlen - (s[1] == 0xa3 ? 2 : 5);
      if (sl == 16 && !memcmp(sym, "amqp:data:binary", 16)) code = 0x75;
      if (sl == 17 && !memcmp(sym, "amqp:amqp-value:*", 17)) code = 0x77;
    }
    const uint8_t *v = s + 1 + dlen;
    if ((code == 0x75 || code == 0x77) && (v[0] == 0xa0 || v[0] == 0xb0)) {
      size_t h = v[0] == 0xa0 ? 2 : 5;
      *blen = value_size(v, rem - 1 - dlen) - h;
      return v + h;
    }
    pos += total;
  }
  return NULL;
}

/* ---- connections ---- */
static void open_connection(app_t *app, const char *host, const char *port, bool tls, const char *suffix) {
  char addr[PN_MAX_ADDR];
  char cid[128];
  pn_connection_t *c = pn_connection();
  snprintf(cid, sizeof(cid), "mesh-perf-%ld-%s", (long)getpid(), suffix);
  pn_connection_set_container(c, cid);
  pn_connection_set_hostname(c, host);
  pn_connection_set_context(c, (void *)suffix); /* "send" or "recv" */
  pn_transport_t *t = NULL;
  if (app->sasl || tls) t = pn_transport();
  if (app->sasl) pn_sasl_allowed_mechs(pn_sasl(t), "ANONYMOUS");
  if (tls) {
    pn_ssl_t *ssl = pn_ssl(t);
    if (!ssl || pn_ssl_init(ssl, app->ssl_domain, NULL) != 0) {
      pn_transport_free(t);
      pn_connection_free(c);
      set_error(app, "TLS: cannot set up the client transport");
      shutdown_all(app);
      return;
    }
    pn_ssl_set_peer_hostname(ssl, host);
  }
  pn_proactor_addr(addr, sizeof(addr), host, port);
  pn_proactor_connect2(app->proactor, c, t, addr);
}

static bool is_send_conn(pn_connection_t *c) {
  const char *s = (const char *)pn_connection_get_context(c);
  return s && s[0] == 's';
}

static void start_sender(app_t *app) {
  if (app->sender_started) return;
  app->sender_started = true;
  open_connection(app, app->send_host, app->send_port, app->send_tls, "send");
}

static void try_send(app_t *app) {
  pn_link_t *s = app->sender;
  if (!s || app->sender_done) return;
  while (app->sent < app->messages && pn_link_credit(s) > 0 &&
         (app->presettled || app->window <= 0 ||
          app->sent - app->outcomes < (uint64_t)app->window)) {
    uint64_t seq = app->sent;
    pn_delivery_t *d = pn_delivery(s, pn_dtag((const char *)&seq, sizeof(seq)));
    uint64_t ts = now_ns();
    memcpy(app->msg + app->payload_off, &ts, 8);
    memcpy(app->msg + app->payload_off + 8, &seq, 8);
    pn_link_send(s, (const char *)app->msg, app->msg_len);
    pn_link_advance(s);
    if (app->presettled) pn_delivery_settle(d);
    if (seq == 0) app->t_first_send = ts;
    app->t_last_send = ts;
    app->sent++;
  }
  if (app->presettled && app->sent == app->messages && !app->sender_done)
    side_done(app, true);
}

static void receiver_credit(app_t *app) {
  pn_link_t *r = app->receiver;
  uint64_t remaining = app->messages - app->received;
  int want = (uint64_t)app->credit < remaining ? app->credit : (int)remaining;
  int have = pn_link_credit(r);
  /* top up in batches of at least half the window */
  if (want > have && (have <= app->credit / 2 || (uint64_t)want == remaining))
    pn_link_flow(r, want - have);
}

static void on_message(app_t *app, const uint8_t *data, size_t len) {
  uint64_t t = now_ns();
  size_t blen = 0;
  const uint8_t *body = find_body(data, len, &blen);
  if (!body || blen < 16) {
    app->bad_messages++;
  } else {
    uint64_t ts;
    memcpy(&ts, body, 8);
    if (ts <= t && app->received < app->messages) {
      app->lat_ns[app->received] = t - ts;
      if (app->min_send_ts == 0 || ts < app->min_send_ts) app->min_send_ts = ts;
    } else {
      app->bad_messages++;
    }
  }
  if (app->received == 0) app->t_first_recv = t;
  app->t_last_recv = t;
  app->received++;
}

static void check_condition(app_t *app, const char *what, pn_condition_t *cond) {
  if (pn_condition_is_set(cond)) {
    set_error(app, "%s: %s: %s", what, pn_condition_get_name(cond),
              pn_condition_get_description(cond) ? pn_condition_get_description(cond) : "");
  }
}

/* Returns false when this thread should stop. */
static bool handle(app_t *app, pn_event_t *e) {
  switch (pn_event_type(e)) {
    case PN_CONNECTION_INIT: {
      pn_connection_t *c = pn_event_connection(e);
      pn_session_t *ssn = pn_session(c);
      pn_connection_open(c);
      pn_session_open(ssn);
      if (is_send_conn(c)) {
        app->sconn = c;
        pn_link_t *l = pn_sender(ssn, "mesh-perf-sender");
        pn_terminus_set_address(pn_link_target(l), app->address);
        /* A durable terminus: RabbitMQ's AMQP 1.0 plugin then declares /queue/NAME durable. */
        if (app->durable) pn_terminus_set_durability(pn_link_target(l), PN_DELIVERIES);
        pn_link_set_snd_settle_mode(l, app->presettled ? PN_SND_SETTLED : PN_SND_UNSETTLED);
        pn_link_set_rcv_settle_mode(l, PN_RCV_FIRST);
        app->sender = l;
        pn_link_open(l);
      } else {
        app->rconn = c;
        pn_link_t *l = pn_receiver(ssn, "mesh-perf-receiver");
        pn_terminus_set_address(pn_link_source(l), app->address);
        if (app->durable) pn_terminus_set_durability(pn_link_source(l), PN_DELIVERIES);
        pn_link_set_rcv_settle_mode(l, PN_RCV_FIRST);
        app->receiver = l;
        pn_link_open(l);
        receiver_credit(app);
      }
      break;
    }
    case PN_LINK_REMOTE_OPEN: {
      pn_link_t *l = pn_event_link(e);
      if (l == app->receiver) {
        if (app->mode == MODE_RECEIVE) {
          fprintf(stderr, "{\"event\":\"ready\"}\n");
          fflush(stderr);
        } else {
          start_sender(app); /* receiver attached: now the sender */
        }
      }
      break;
    }
    case PN_CONNECTION_REMOTE_OPEN: {
      pn_connection_t *c = pn_event_connection(e);
      pn_transport_t *t = pn_event_transport(e);
      if (is_send_conn(c) && app->send_tls && t) {
        pn_ssl_t *ssl = pn_ssl(t);
        if (ssl) {
          pn_ssl_get_protocol_name(ssl, app->tls_protocol, sizeof(app->tls_protocol));
          pn_ssl_get_cipher_name(ssl, app->tls_cipher, sizeof(app->tls_cipher));
        }
      }
      break;
    }
    case PN_LINK_FLOW:
      if (pn_event_link(e) == app->sender) try_send(app);
      break;

    case PN_DELIVERY: {
      pn_delivery_t *d = pn_event_delivery(e);
      pn_link_t *l = pn_delivery_link(d);
      if (l == app->sender) {
        if (pn_delivery_updated(d)) {
          uint64_t st = pn_delivery_remote_state(d);
          if (st == PN_ACCEPTED) app->accepted++;
          else if (st == PN_REJECTED) app->rejected++;
          else if (st == PN_RELEASED) app->released++;
          else if (st == PN_MODIFIED) app->modified++;
          else if (!pn_delivery_settled(d)) break; /* non-terminal state */
          else app->other++;
          app->outcomes++;
          app->t_last_outcome = now_ns();
          pn_delivery_settle(d);
          if (app->outcomes == app->messages && !app->sender_done) {
            side_done(app, true);
          } else {
            try_send(app);
          }
        }
      } else if (l == app->receiver) {
        if (pn_delivery_aborted(d)) {
          app->rbuf_len = 0;
          pn_delivery_settle(d);
          receiver_credit(app);
          break;
        }
        if (!pn_delivery_readable(d)) break;
        size_t pending = pn_delivery_pending(d);
        if (app->rbuf_len + pending > app->rbuf_cap) {
          app->rbuf_cap = (app->rbuf_len + pending) * 2;
          app->rbuf = realloc(app->rbuf, app->rbuf_cap);
        }
        ssize_t n = pn_link_recv(l, (char *)app->rbuf + app->rbuf_len, pending);
        if (n > 0) app->rbuf_len += (size_t)n;
        if (pn_delivery_partial(d)) break;
        on_message(app, app->rbuf, app->rbuf_len);
        app->rbuf_len = 0;
        if (pn_delivery_settled(d)) {
          app->presettled_in++;
        } else {
          pn_delivery_update(d, PN_ACCEPTED);
        }
        pn_delivery_settle(d);
        if (app->received >= app->messages) {
          if (!app->receiver_done) side_done(app, false);
        } else {
          receiver_credit(app);
        }
      }
      break;
    }
    case PN_TRANSPORT_CLOSED: {
      pn_connection_t *c = pn_event_connection(e);
      check_condition(app, "transport", pn_transport_condition(pn_event_transport(e)));
      bool sside = c && is_send_conn(c);
      bool done = sside ? app->sender_done : app->receiver_done;
      if (!done) {
        if (!app->timed_out) set_error(app, "%s connection closed early", sside ? "sending" : "receiving");
        shutdown_all(app);
      }
      break;
    }
    case PN_CONNECTION_REMOTE_CLOSE:
      check_condition(app, "connection", pn_connection_remote_condition(pn_event_connection(e)));
      pn_connection_close(pn_event_connection(e));
      break;
    case PN_SESSION_REMOTE_CLOSE:
      check_condition(app, "session", pn_session_remote_condition(pn_event_session(e)));
      pn_connection_close(pn_event_connection(e));
      break;
    case PN_LINK_REMOTE_CLOSE:
    case PN_LINK_REMOTE_DETACH: {
      pn_link_t *l = pn_event_link(e);
      bool done = l == app->sender ? app->sender_done : app->receiver_done;
      check_condition(app, "link", pn_link_remote_condition(l));
      if (!done) {
        set_error(app, "link %s detached by peer", pn_link_name(l));
        shutdown_all(app);
      }
      break;
    }
    case PN_PROACTOR_TIMEOUT:
      pthread_mutex_lock(&app->lock);
      app->timed_out = true;
      pthread_mutex_unlock(&app->lock);
      set_error(app, "timeout");
      shutdown_all(app);
      break;
    case PN_PROACTOR_INACTIVE:
      pn_proactor_interrupt(app->proactor);
      return false;
    case PN_PROACTOR_INTERRUPT:
      pn_proactor_interrupt(app->proactor); /* pass it on to the other threads */
      return false;
    default:
      break;
  }
  return true;
}

static void *run(void *arg) {
  app_t *app = arg;
  bool finished = false;
  while (!finished) {
    pn_event_batch_t *events = pn_proactor_wait(app->proactor);
    pn_event_t *e;
    while ((e = pn_event_batch_next(events))) {
      if (!handle(app, e)) finished = true;
    }
    pn_proactor_done(app->proactor, events);
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, uint64_t n, double p) {
  if (n == 0) return 0;
  uint64_t i = (uint64_t)(p * (double)(n - 1) + 0.5);
  if (i >= n) i = n - 1;
  return (double)v[i] / 1000.0;
}

static void usage(FILE *f) {
  fprintf(f,
    "usage: mesh_perf [options]\n"
    "  --url URL            amqp://HOST:PORT or amqps://HOST:PORT (TLS; default port 5671)\n"
    "                       (default amqp://127.0.0.1:5672)\n"
    "  --receive-url URL    URL of the receiving connection (default: --url)\n"
    "  --address ADDR       AMQP address (default mesh-perf)\n"
    "  --messages N         messages to send/receive (default 100000)\n"
    "  --body-size B        body bytes, >= %d (default 100)\n"
    "  --credit C           receiver credit window (default 1000)\n"
    "  --window W           max unsettled deliveries in flight at the sender\n"
    "                       (default: same as --credit; 0 = only link credit)\n"
    "  --presettled         send pre-settled (no outcomes; \"accepted\" stays 0)\n"
    "  --durable            mark messages durable (header section): a broker must persist them\n"
    "  --mode both|send|receive   (default both)\n"
    "  --threads T          proactor threads (default 1)\n"
    "  --timeout S          seconds before giving up (default 60)\n"
    "  --sasl               use a SASL ANONYMOUS layer (default: plain AMQP)\n"
    "  --ssl-ca FILE        amqps: verify the server certificate against the CA(s) in FILE\n"
    "                       (default: no verification)\n"
    "  --ssl-verify name|peer|none  amqps: check certificate and host name (default with\n"
    "                       --ssl-ca), the certificate only, or nothing (default without);\n"
    "                       Proton-C matches host names, not IP addresses: for \"name\"\n"
    "                       dial amqps://localhost:PORT, not 127.0.0.1\n",
    MIN_BODY);
}

int main(int argc, char **argv) {
  static app_t app;
  const char *url = "amqp://127.0.0.1:5672", *rurl = NULL;
  app.address = "mesh-perf";
  app.messages = 100000;
  app.body_size = 100;
  app.credit = 1000;
  app.window = -1;
  app.threads = 1;
  app.timeout_s = 60;
  app.mode = MODE_BOTH;
  int ssl_verify = -1;

  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) { fprintf(stderr, "missing value for %s\n", a); return 2; } ++i; } while (0)
    if (!strcmp(a, "--url")) { NEEDV(); url = v; }
    else if (!strcmp(a, "--receive-url")) { NEEDV(); rurl = v; }
    else if (!strcmp(a, "--address")) { NEEDV(); app.address = v; }
    else if (!strcmp(a, "--messages")) { NEEDV(); app.messages = strtoull(v, NULL, 10); }
    else if (!strcmp(a, "--body-size")) { NEEDV(); app.body_size = (size_t)strtoull(v, NULL, 10); }
    else if (!strcmp(a, "--credit")) { NEEDV(); app.credit = atoi(v); }
    else if (!strcmp(a, "--window")) { NEEDV(); app.window = atoi(v); }
    else if (!strcmp(a, "--threads")) { NEEDV(); app.threads = atoi(v); }
    else if (!strcmp(a, "--timeout")) { NEEDV(); app.timeout_s = atof(v); }
    else if (!strcmp(a, "--sasl")) { app.sasl = true; }
    else if (!strcmp(a, "--ssl-ca")) { NEEDV(); app.ssl_ca = v; }
    else if (!strcmp(a, "--ssl-verify")) {
      NEEDV();
      if (!strcmp(v, "name")) ssl_verify = PN_SSL_VERIFY_PEER_NAME;
      else if (!strcmp(v, "peer")) ssl_verify = PN_SSL_VERIFY_PEER;
      else if (!strcmp(v, "none")) ssl_verify = PN_SSL_ANONYMOUS_PEER;
      else { fprintf(stderr, "bad --ssl-verify %s\n", v); return 2; }
    }
    else if (!strcmp(a, "--presettled")) { app.presettled = true; }
    else if (!strcmp(a, "--durable")) { app.durable = true; }
    else if (!strcmp(a, "--mode")) {
      NEEDV();
      if (!strcmp(v, "both")) app.mode = MODE_BOTH;
      else if (!strcmp(v, "send")) app.mode = MODE_SEND;
      else if (!strcmp(v, "receive")) app.mode = MODE_RECEIVE;
      else { fprintf(stderr, "bad --mode %s\n", v); return 2; }
    }
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
    else { fprintf(stderr, "unknown option %s\n", a); usage(stderr); return 2; }
  }
  if (app.messages == 0 || app.credit <= 0 || app.threads <= 0 || app.timeout_s <= 0) {
    fprintf(stderr, "--messages, --credit, --threads and --timeout must be > 0\n");
    return 2;
  }
  if (app.body_size < MIN_BODY) app.body_size = MIN_BODY;
  if (app.window < 0) app.window = app.credit;
  if (parse_url(url, app.send_host, sizeof(app.send_host), app.send_port, sizeof(app.send_port),
                &app.send_tls) ||
      parse_url(rurl ? rurl : url, app.recv_host, sizeof(app.recv_host), app.recv_port,
                sizeof(app.recv_port), &app.recv_tls)) {
    fprintf(stderr, "bad URL\n");
    return 2;
  }
  if (app.send_tls || app.recv_tls) {
    if (!pn_ssl_present()) { fprintf(stderr, "amqps: this Proton-C has no TLS support\n"); return 2; }
    app.ssl_verify = ssl_verify >= 0 ? (pn_ssl_verify_mode_t)ssl_verify
                                     : app.ssl_ca ? PN_SSL_VERIFY_PEER_NAME : PN_SSL_ANONYMOUS_PEER;
    if (app.ssl_verify != PN_SSL_ANONYMOUS_PEER && !app.ssl_ca) {
      fprintf(stderr, "--ssl-verify %s needs --ssl-ca\n", app.ssl_verify == PN_SSL_VERIFY_PEER ? "peer" : "name");
      return 2;
    }
    app.ssl_domain = pn_ssl_domain(PN_SSL_MODE_CLIENT);
    if (!app.ssl_domain) { fprintf(stderr, "amqps: cannot create a TLS client domain\n"); return 2; }
    if (app.ssl_ca && pn_ssl_domain_set_trusted_ca_db(app.ssl_domain, app.ssl_ca) != 0) {
      fprintf(stderr, "--ssl-ca %s: cannot load the CA file\n", app.ssl_ca);
      return 2;
    }
    if (pn_ssl_domain_set_peer_authentication(app.ssl_domain, app.ssl_verify, NULL) != 0) {
      fprintf(stderr, "amqps: cannot set the peer verification mode\n");
      return 2;
    }
  }

  pthread_mutex_init(&app.lock, NULL);
  build_message(&app);
  if (app.mode != MODE_SEND) {
    app.lat_ns = calloc(app.messages, sizeof(uint64_t));
    if (!app.lat_ns) { fprintf(stderr, "out of memory\n"); return 2; }
  } else {
    app.receiver_done = true;
  }
  if (app.mode == MODE_RECEIVE) app.sender_done = true;

  app.proactor = pn_proactor();
  pn_proactor_set_timeout(app.proactor, (pn_millis_t)(app.timeout_s * 1000));
  if (app.mode == MODE_SEND) start_sender(&app);
  else open_connection(&app, app.recv_host, app.recv_port, app.recv_tls, "recv");

  pthread_t *th = calloc((size_t)app.threads, sizeof(pthread_t));
  for (int i = 1; i < app.threads; ++i) pthread_create(&th[i], NULL, run, &app);
  run(&app);
  for (int i = 1; i < app.threads; ++i) pthread_join(th[i], NULL);
  free(th);
  pn_proactor_free(app.proactor);
  if (app.ssl_domain) pn_ssl_domain_free(app.ssl_domain);

  /* ---- report ---- */
  uint64_t t0, t1, done;
  const char *mode = app.mode == MODE_BOTH ? "both" : app.mode == MODE_SEND ? "send" : "receive";
  if (app.mode == MODE_SEND) {
    t0 = app.t_first_send;
    t1 = app.presettled ? app.t_last_send : app.t_last_outcome;
    done = app.presettled ? app.sent : app.outcomes;
  } else {
    t0 = app.mode == MODE_BOTH ? app.t_first_send : app.min_send_ts;
    if (!t0) t0 = app.t_first_recv;
    t1 = app.t_last_recv;
    if (app.mode == MODE_BOTH && !app.presettled && app.t_last_outcome > t1) t1 = app.t_last_outcome;
    done = app.received;
  }
  double secs = (t1 > t0) ? (double)(t1 - t0) / 1e9 : 0.0;
  uint64_t nlat = app.received < app.messages ? app.received : app.messages;
  if (app.lat_ns && nlat) qsort(app.lat_ns, nlat, sizeof(uint64_t), cmp_u64);
  double mean = 0;
  for (uint64_t i = 0; i < nlat; ++i) mean += (double)app.lat_ns[i];
  if (nlat) mean = mean / (double)nlat / 1000.0;

  printf("{\"mode\":\"%s\",\"messages\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64
         ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"released\":%" PRIu64
         ",\"modified\":%" PRIu64 ",\"seconds\":%.6f,\"msgs_per_sec\":%.1f",
         mode, app.messages, app.sent, app.received, app.accepted, app.rejected, app.released,
         app.modified, secs, secs > 0 ? (double)done / secs : 0.0);
  if (app.mode != MODE_SEND) {
    printf(",\"latency_us\":{\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,"
           "\"mean\":%.1f}",
           pct_us(app.lat_ns, nlat, 0), pct_us(app.lat_ns, nlat, 0.5),
           pct_us(app.lat_ns, nlat, 0.9), pct_us(app.lat_ns, nlat, 0.99),
           pct_us(app.lat_ns, nlat, 1.0), mean);
  }
  printf(",\"body_size\":%zu,\"credit\":%d,\"window\":%d,\"threads\":%d,\"presettled\":%s,"
         "\"bad_messages\":%" PRIu64 ",\"timed_out\":%s",
         app.body_size, app.credit, app.window, app.threads, app.presettled ? "true" : "false",
         app.bad_messages, app.timed_out ? "true" : "false");
  if (app.send_tls || app.recv_tls) {
    const char *vm = app.ssl_verify == PN_SSL_VERIFY_PEER_NAME ? "name" : app.ssl_verify == PN_SSL_VERIFY_PEER ? "peer" : "none";
    printf(",\"tls\":{\"send\":%s,\"receive\":%s,\"verify\":\"%s\",\"protocol\":\"%s\",\"cipher\":\"%s\"}",
           app.send_tls ? "true" : "false", app.recv_tls ? "true" : "false", vm,
           app.tls_protocol, app.tls_cipher);
  }
  bool ok = !app.failed;
  if (app.mode != MODE_SEND && app.received < app.messages) ok = false;
  if (app.mode != MODE_RECEIVE && !app.presettled && app.outcomes < app.messages) ok = false;
  if (!ok) {
    char esc[600];
    size_t j = 0;
    const char *msg = app.failed ? app.error : "incomplete";
    for (size_t i = 0; msg[i] && j < sizeof(esc) - 2; ++i) {
      char c = msg[i];
      if (c == '"' || c == '\\') esc[j++] = '\\';
      esc[j++] = (c >= 0 && c < 0x20) ? ' ' : c;
    }
    esc[j] = 0;
    printf(",\"error\":\"%s\"", esc);
  }
  printf("}\n");
  fflush(stdout);
  free(app.msg);
  free(app.rbuf);
  free(app.lat_ns);
  return ok ? 0 : 1;
}
