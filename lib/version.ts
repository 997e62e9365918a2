/** amqp-mesh's version, announced in open frames and logs (package.json's). */
export const VERSION = '0.1.0';
