/**
 * The router's own state for one incoming delivery, kept out of the shared engine's
 * {@link InDelivery}: what the scan found, and the outbound forms, each made at most once per
 * delivery whatever the fan-out. Extends the scan result so a delivery costs one object here.
 */
import type { InDelivery } from '../../amqp/engine/connection';
import { MessageScan } from '../protocol/message';

/** The core's handle (`Delivery.io`) for a message entering through a link. */
export class RoutedDelivery extends MessageScan {
  /** With the router's annotations added (clients that keep them, stripAnnotations in/no). */
  annotated: Buffer | null = null;
  /** With inbound router annotations removed. */
  stripped: Buffer | null = null;
  /** The form sent to other routers (with x-opt-qd.to). */
  forMesh: Buffer | null = null;

  constructor(readonly d: InDelivery) {
    super();
  }
}
