// Node's `events` module for the js engine, loaded on the first
// `require('events')` (or use of `process.on`); compiled to bytecode once per
// process, like the bootstrap (host.rs).
//
// Written here rather than taken from LLRT: LLRT's EventEmitter is a native
// class whose methods refuse any `this` that the class did not construct, so
// the `EventEmitter.call(this)` + `util.inherits` pattern of many npm packages
// fails with it, and it lacks listenerCount, rawListeners, the max-listeners
// calls, `EventEmitter.once` and the throw of an unhandled 'error' event.
export default function events() {
  const kListeners = Symbol('listeners');
  const kMax = Symbol('maxListeners');
  let defaultMaxListeners = 10;
  const errorMonitor = Symbol('events.errorMonitor');

  const invalidListener = (listener) =>
    Object.assign(new TypeError('The "listener" argument must be of type function. Received ' + (listener === null ? 'null' : typeof listener)), { code: 'ERR_INVALID_ARG_TYPE' });

  // The listener table, created on first use so that `EventEmitter.call(this)`
  // is optional, as it is in Node.
  function table(emitter) {
    if (!Object.prototype.hasOwnProperty.call(emitter, kListeners)) {
      Object.defineProperty(emitter, kListeners, { value: new Map(), configurable: true, writable: true });
    }
    return emitter[kListeners];
  }

  // A `once` listener is stored wrapped; `listener` points back to the original.
  function onceWrapper(emitter, name, listener) {
    const wrapped = function (...args) {
      emitter.removeListener(name, wrapped);
      return listener.apply(this, args);
    };
    wrapped.listener = listener;
    return wrapped;
  }

  function add(emitter, name, listener, prepend) {
    if (typeof listener !== 'function') throw invalidListener(listener);
    const listeners = table(emitter);
    if (listeners.has('newListener')) emitter.emit('newListener', name, listener.listener || listener);
    const list = listeners.get(name);
    if (list === undefined) listeners.set(name, [listener]);
    else if (prepend) list.unshift(listener);
    else list.push(listener);
    return emitter;
  }

  function EventEmitter(options) {
    table(this);
    if (options && options.captureRejections) this.captureRejections = true;
  }

  Object.assign(EventEmitter.prototype, {
    on(name, listener) { return add(this, name, listener, false); },
    addListener(name, listener) { return add(this, name, listener, false); },
    prependListener(name, listener) { return add(this, name, listener, true); },
    once(name, listener) {
      if (typeof listener !== 'function') throw invalidListener(listener);
      return add(this, name, onceWrapper(this, name, listener), false);
    },
    prependOnceListener(name, listener) {
      if (typeof listener !== 'function') throw invalidListener(listener);
      return add(this, name, onceWrapper(this, name, listener), true);
    },
    removeListener(name, listener) {
      if (typeof listener !== 'function') throw invalidListener(listener);
      const listeners = table(this);
      const list = listeners.get(name);
      if (list === undefined) return this;
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i] === listener || list[i].listener === listener) {
          list.splice(i, 1);
          if (list.length === 0) listeners.delete(name);
          if (listeners.has('removeListener')) this.emit('removeListener', name, listener);
          break;
        }
      }
      return this;
    },
    off(name, listener) { return this.removeListener(name, listener); },
    removeAllListeners(name) {
      const listeners = table(this);
      const names = name === undefined ? Array.from(listeners.keys()) : [name];
      for (const each of names) {
        // As in Node: each removal is announced to 'removeListener' listeners,
        // which themselves go last.
        if (each === 'removeListener' && name === undefined) continue;
        const list = listeners.get(each);
        if (list === undefined) continue;
        for (let i = list.length - 1; i >= 0; i--) this.removeListener(each, list[i]);
      }
      if (name === undefined) listeners.clear();
      return this;
    },
    emit(name, ...args) {
      const list = table(this).get(name);
      if (name === 'error') {
        const monitors = table(this).get(errorMonitor);
        if (monitors) for (const monitor of monitors.slice()) monitor.apply(this, args);
        if (list === undefined) {
          const error = args[0];
          if (error instanceof Error) throw error;
          let shown;
          try { shown = typeof error === 'string' ? "'" + error + "'" : JSON.stringify(error); } catch { shown = String(error); }
          throw Object.assign(new Error('Unhandled error. (' + shown + ')'), { code: 'ERR_UNHANDLED_ERROR', context: error });
        }
      }
      if (list === undefined) return false;
      for (const listener of list.slice()) listener.apply(this, args);
      return true;
    },
    listeners(name) { return (table(this).get(name) || []).map((l) => l.listener || l); },
    rawListeners(name) { return (table(this).get(name) || []).slice(); },
    listenerCount(name) { return (table(this).get(name) || []).length; },
    eventNames() { return Array.from(table(this).keys()); },
    setMaxListeners(n) {
      if (typeof n !== 'number' || n < 0 || Number.isNaN(n)) {
        throw Object.assign(new RangeError('The value of "n" is out of range. It must be a non-negative number. Received ' + n), { code: 'ERR_OUT_OF_RANGE' });
      }
      this[kMax] = n;
      return this;
    },
    getMaxListeners() { return this[kMax] === undefined ? defaultMaxListeners : this[kMax]; },
  });

  Object.defineProperty(EventEmitter, 'defaultMaxListeners', {
    enumerable: true,
    get: () => defaultMaxListeners,
    set: (n) => { defaultMaxListeners = n; },
  });

  // Resolves with the arguments of the next `name` event; rejects on 'error'.
  EventEmitter.once = function once(emitter, name) {
    return new Promise((resolve, reject) => {
      const onError = (error) => { emitter.removeListener(name, onEvent); reject(error); };
      const onEvent = (...args) => { if (name !== 'error') emitter.removeListener('error', onError); resolve(args); };
      emitter.once(name, onEvent);
      if (name !== 'error') emitter.once('error', onError);
    });
  };
  EventEmitter.listenerCount = (emitter, name) => emitter.listenerCount(name);
  EventEmitter.getEventListeners = (emitter, name) => emitter.listeners(name);
  EventEmitter.setMaxListeners = (n, ...emitters) => {
    if (emitters.length === 0) defaultMaxListeners = n;
    for (const emitter of emitters) emitter.setMaxListeners(n);
  };
  EventEmitter.errorMonitor = errorMonitor;
  EventEmitter.EventEmitter = EventEmitter;
  EventEmitter.usingDomains = false;
  return EventEmitter;
}
