export { createHttpListener, parseHttpAddress, type HttpListener, type HttpListenerOptions, type HttpService } from './listener.js';
export { createRegistry } from './registry.js';
