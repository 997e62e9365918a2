/**
 * The one error base of the AMQP stack: every refusal the router or the broker raises carries the
 * AMQP condition the peer will see, so the layer that catches it never has to guess one.
 */

/** AMQP error (part 2, 2.8.14): what a close, end, detach or rejected outcome carries. */
export interface AmqpError {
  condition: string;
  description?: string | null;
  info?: Record<string, unknown> | null;
}

/** An error that maps to an AMQP condition (`amqp:decode-error`, `amqp:invalid-field`, ...). */
export class AmqpConditionError extends Error {
  constructor(message: string, readonly condition: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AmqpConditionError';
  }

  /** The error as the peer receives it. */
  toAmqpError(): AmqpError {
    return { condition: this.condition, description: this.message };
  }
}
