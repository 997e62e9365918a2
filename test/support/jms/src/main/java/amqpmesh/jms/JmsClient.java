package amqpmesh.jms;

import jakarta.jms.BytesMessage;
import jakarta.jms.Connection;
import jakarta.jms.DeliveryMode;
import jakarta.jms.Destination;
import jakarta.jms.JMSException;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;
import java.util.ArrayList;
import java.util.List;
import org.apache.qpid.jms.JmsConnectionFactory;

/**
 * A qpid-jms (Apache Qpid JMS 2.x, Jakarta Messaging 3.1) test client: sends and/or receives COUNT
 * text messages on a queue (or topic) and prints one JSON line on stdout.
 *
 * <pre>
 * java -jar jms-client.jar URL ADDRESS COUNT [--mode both|send|receive] [--topic]
 *      [--timeout SECONDS] [--user U --password P] [--body-prefix P] [--non-persistent]
 *      [--client-id ID]
 * </pre>
 *
 * URL is a qpid-jms connection URI: amqp://, amqps://, amqpws://, amqpwss://, with transport.* and
 * jms.* options as query parameters (e.g.
 * amqps://localhost:5671?transport.trustStoreLocation=/x/truststore.p12&amp;transport.trustStorePassword=changeit).
 *
 * Output: {"sent":N,"received":N,"bodies":[...],"timed_out":false} and, on an error,
 * "error", "error_class", "cause" (the innermost cause, e.g. an SSLHandshakeException). Exit code
 * 0 when done or when --timeout expired while receiving (timed_out true), 1 on an error, 2 on bad
 * arguments. With a receiving mode, {"event":"ready"} goes to stderr once the consumer is attached.
 * A watchdog prints the JSON line (with "error": "stuck: ...") and exits 1 if the run is not over
 * after 2 x --timeout + 5 s, so a peer that never answers cannot hang a test. receive(timeout)
 * waits on the prefetched messages only (jms.receiveLocalOnly=true unless the URL sets it), so no
 * drain round trip is needed.
 */
public final class JmsClient {
    private JmsClient() {}

    // progress, shared with the watchdog
    private static volatile int sent;
    private static volatile int received;
    private static final List<String> bodies = java.util.Collections.synchronizedList(new ArrayList<>());
    private static final Object printed = new Object();
    private static boolean done;

    public static void main(String[] args) {
        String url = null, address = null, mode = "both", user = null, password = null, clientId = null;
        String bodyPrefix = "message-";
        int count = -1;
        double timeout = 10;
        boolean topic = false, persistent = true;
        List<String> positional = new ArrayList<>();
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--mode": mode = args[++i]; break;
                    case "--topic": topic = true; break;
                    case "--timeout": timeout = Double.parseDouble(args[++i]); break;
                    case "--user": user = args[++i]; break;
                    case "--password": password = args[++i]; break;
                    case "--client-id": clientId = args[++i]; break;
                    case "--body-prefix": bodyPrefix = args[++i]; break;
                    case "--non-persistent": persistent = false; break;
                    default:
                        if (a.startsWith("--")) throw new IllegalArgumentException("unknown option " + a);
                        positional.add(a);
                }
            }
            if (positional.size() != 3) throw new IllegalArgumentException("expected URL ADDRESS COUNT");
            url = positional.get(0);
            address = positional.get(1);
            count = Integer.parseInt(positional.get(2));
            if (!mode.equals("both") && !mode.equals("send") && !mode.equals("receive")) {
                throw new IllegalArgumentException("--mode must be both, send or receive");
            }
        } catch (RuntimeException e) {
            System.err.println("usage: JmsClient URL ADDRESS COUNT [--mode both|send|receive] [--topic] [--timeout S]"
                    + " [--user U --password P] [--body-prefix P] [--non-persistent] [--client-id ID]: " + e.getMessage());
            System.exit(2);
            return;
        }

        boolean send = !mode.equals("receive");
        boolean receive = !mode.equals("send");
        boolean timedOut = false;
        Throwable error = null;
        Connection connection = null;
        long timeoutMs = Math.max(1, (long) (timeout * 1000));
        // A peer that never answers (a close, a drain, a disposition) must not hang the test: print
        // what we have and exit 1 after twice --timeout plus 5 s.
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(2 * timeoutMs + 5000);
            } catch (InterruptedException e) {
                return;
            }
            report(false, new IllegalStateException("stuck: no progress within 2 x --timeout + 5 s"));
            Runtime.getRuntime().halt(1);
        }, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
        try {
            JmsConnectionFactory factory = new JmsConnectionFactory(url);
            // receive(timeout) waits on the local prefetch buffer only (no drain round trip), unless the URL says otherwise
            if (!url.contains("jms.receiveLocalOnly")) factory.setReceiveLocalOnly(true);
            factory.setConnectTimeout(timeoutMs);
            factory.setCloseTimeout(Math.min(timeoutMs, 5000));
            factory.setRequestTimeout(timeoutMs);
            factory.setSendTimeout(timeoutMs);
            if (clientId != null) factory.setClientID(clientId);
            connection = user != null ? factory.createConnection(user, password) : factory.createConnection();
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Destination dest = topic ? session.createTopic(address) : session.createQueue(address);
            MessageConsumer consumer = null;
            if (receive) {
                consumer = session.createConsumer(dest); // returns once the peer attached the link
                System.err.println("{\"event\":\"ready\",\"address\":" + json(address) + "}");
                System.err.flush();
            }
            if (send) {
                MessageProducer producer = session.createProducer(dest);
                producer.setDeliveryMode(persistent ? DeliveryMode.PERSISTENT : DeliveryMode.NON_PERSISTENT);
                for (int i = 0; i < count; i++) {
                    producer.send(session.createTextMessage(bodyPrefix + i));
                    sent++;
                }
                producer.close();
            }
            if (receive) {
                long deadline = System.currentTimeMillis() + timeoutMs;
                while (received < count) {
                    long left = deadline - System.currentTimeMillis();
                    if (left <= 0) {
                        timedOut = true;
                        break;
                    }
                    Message m = consumer.receive(left);
                    if (m == null) {
                        timedOut = true;
                        break;
                    }
                    received++;
                    bodies.add(bodyOf(m));
                }
                consumer.close();
            }
        } catch (Throwable t) {
            error = t;
        } finally {
            if (connection != null) {
                try {
                    connection.close();
                } catch (Throwable t) {
                    if (error == null) error = t;
                }
            }
        }

        report(timedOut, error);
        // qpid-jms leaves non-daemon Netty threads behind for a moment after close
        System.exit(error != null ? 1 : 0);
    }

    /** Prints the one JSON line (once: the main thread or the watchdog). */
    private static void report(boolean timedOut, Throwable error) {
        synchronized (printed) {
            if (done) return;
            done = true;
            StringBuilder out = new StringBuilder();
            out.append("{\"sent\":").append(sent).append(",\"received\":").append(received).append(",\"bodies\":[");
            synchronized (bodies) {
                for (int i = 0; i < bodies.size(); i++) {
                    if (i > 0) out.append(',');
                    out.append(json(bodies.get(i)));
                }
            }
            out.append("],\"timed_out\":").append(timedOut);
            if (error != null) {
                Throwable root = error;
                while (root.getCause() != null && root.getCause() != root) root = root.getCause();
                out.append(",\"error\":").append(json(String.valueOf(error.getMessage())));
                out.append(",\"error_class\":").append(json(error.getClass().getName()));
                out.append(",\"cause\":").append(json(root.getClass().getName() + ": " + root.getMessage()));
            }
            out.append('}');
            System.out.println(out);
            System.out.flush();
        }
    }

    private static String bodyOf(Message m) throws JMSException {
        if (m instanceof TextMessage) return ((TextMessage) m).getText();
        if (m instanceof BytesMessage) {
            BytesMessage b = (BytesMessage) m;
            byte[] data = new byte[(int) b.getBodyLength()];
            b.readBytes(data);
            return "bytes:" + java.util.Base64.getEncoder().encodeToString(data);
        }
        Object o = m.getBody(Object.class);
        return String.valueOf(o);
    }

    private static String json(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
