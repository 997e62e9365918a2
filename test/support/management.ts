/**
 * Management requests as qdrouterd's tools send them, from a Proton client
 * (test/support/proton/mgmt_request.py), with the checks every reply must pass.
 */
import * as assert from 'uvu/assert';
import { Json, runProton } from './proton';

/**
 * Sends `requests` ({properties, body}) to `address` over one connection and returns the
 * client's report; every reply must carry its request's correlation-id and go to the reply-to.
 */
export async function ask(u: string, requests: unknown[], address = '$management', anonymous = false): Promise<Json> {
  const args = ['--url', u, '--address', address, '--requests', JSON.stringify(requests), '--timeout', '8'];
  const r = await runProton('mgmt_request.py', anonymous ? [...args, '--anonymous'] : args);
  assert.is(r.code, 0, r.stderr + JSON.stringify(r.result));
  assert.is(r.result.timed_out, false);
  assert.is(r.result.replies.length, requests.length);
  r.result.replies.forEach((x: Json, i: number) => {
    assert.is(x.correlation_id, String(i + 1), 'correlation-id = the request\'s');
    assert.is(x.to, r.result.reply_to, 'to = the request\'s reply-to');
  });
  return r.result;
}

/** One QUERY reply as records. */
export function rows(reply: Json): Record<string, unknown>[] {
  assert.is(reply.statusCode, 200, reply.statusDescription);
  return reply.body.results.map((row: unknown[]) => Object.fromEntries(reply.body.attributeNames.map((n: string, i: number) => [n, row[i]])));
}

