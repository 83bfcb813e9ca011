// Types of cloudlet-sdk: wx.cloud's client API for a Cloudlet server.

export interface InitOptions {
  /** The env calls go to unless a call's `config.env` names another. Default `default`. */
  env?: string;
  /** The server's base URL. Default: the page's origin in a browser, `$CLOUDLET_SERVER` in Node.js. */
  endpoint?: string;
  /** An env's publishable key (`pk_…`) or env key, sent as a Bearer token. Default `$CLOUDLET_KEY` in Node.js. */
  accessKey?: string;
  /** Client-side timeout of a call, in ms. Default 60000. */
  timeout?: number;
  /** The largest `timeout` a callHTTPFunction call may ask for, in ms. Default 1500, as WeChat's. */
  maxHTTPTimeout?: number;
}

/** A failed call, as WeChat's client reports it, with Cloudlet's own code. */
export declare class CloudError extends Error {
  /** WeChat's numeric code, such as -404011 for a function that failed. */
  errCode: number;
  /** `cloud.callFunction:fail …` or `cloud.callHTTPFunction:fail …`. */
  errMsg: string;
  /** Cloudlet's code, such as `FUNCTION_INVOCATION_FAILED`, or `TIMEOUT` and `NETWORK_ERROR` from the client. */
  code: string;
  /** The invocation's request ID, when it ran: its record and logs tell more. */
  requestID?: string;
}

export interface CallFunctionResult<T = any> {
  result: T;
  requestID: string;
  errMsg: 'cloud.callFunction:ok';
}

export interface CallFunctionParams<T = any> {
  name: string;
  data?: Record<string, any>;
  /** `async: true` queues the call on the server and resolves once it is on disk, with its `requestID` and no result. */
  config?: { env?: string; timeout?: number; async?: boolean };
  success?: (res: CallFunctionResult<T>) => void;
  fail?: (err: CloudError) => void;
  complete?: (res: CallFunctionResult<T> | CloudError) => void;
}

export interface HTTPHeadersReceived {
  header: Record<string, string>;
  statusCode: number;
}

export interface CallHTTPFunctionResult<T = any> {
  data: T;
  statusCode: number;
  header: Record<string, string>;
  requestID?: string;
  errMsg: 'cloud.callHTTPFunction:ok';
}

export interface CallHTTPFunctionParams<T = any> {
  name: string;
  config?: { env?: string };
  /** The query string for GET and HEAD; the body otherwise (objects as JSON). */
  data?: string | ArrayBuffer | ArrayBufferView | Record<string, any>;
  /** The path below the function's root. Default `/`. */
  path?: string;
  /** In lower or upper case. Default GET. */
  method?: string;
  header?: Record<string, string>;
  /** At most `maxHTTPTimeout` (1500 ms by default); for a streamed call, the wait for its headers. */
  timeout?: number;
  /** `json` (the default) parses a JSON answer; anything else keeps the text. Not for streamed calls. */
  dataType?: 'json' | string;
  /** `arraybuffer` gives the answer's bytes. Not for streamed calls. */
  responseType?: 'text' | 'arraybuffer';
  enableChunked?: boolean;
  onHeadersReceived?: (res: HTTPHeadersReceived) => void;
  onChunkedReceived?: (res: { data: ArrayBuffer }) => void;
  success?: (res: CallHTTPFunctionResult<T>) => void;
  fail?: (err: CloudError) => void;
  complete?: (res: CallHTTPFunctionResult<T> | CloudError) => void;
}

export interface PublishResult {
  /** The message's ID: each subscriber's delivery is the invocation `msg:{messageId}:{function}`. */
  messageId: string;
  /** How many subscribed functions the message was queued for; 0 when none subscribes. */
  deliveries: number;
  errMsg: 'cloud.publish:ok';
}

export interface PublishParams {
  /** The topic, its levels separated by `/`, without `+` or `#`. */
  topic: string;
  /** An object travels as JSON, a string as text, bytes as bytes. Default `{}`. */
  data?: string | ArrayBuffer | ArrayBufferView | Record<string, any>;
  config?: { env?: string; timeout?: number };
  success?: (res: PublishResult) => void;
  fail?: (err: CloudError) => void;
  complete?: (res: PublishResult | CloudError) => void;
}

/** A call in flight: a promise of its answer that can be aborted, as `wx.request`'s task. */
export interface HTTPFunctionTask<T = any> extends Promise<CallHTTPFunctionResult<T>> {
  abort(): void;
}

/** A field marked to travel through temporary storage: the function gets its URL. */
export interface CDNField {
  readonly target: unknown;
}

export declare class Cloud {
  constructor(options?: InitOptions);
  init(options?: InitOptions): void;
  callFunction<T = any>(params: CallFunctionParams<T>): Promise<CallFunctionResult<T>>;
  callHTTPFunction<T = any>(params: CallHTTPFunctionParams<T>): HTTPFunctionTask<T>;
  /** Publishes a message to the functions subscribed to its topic, through the server's durable queue. */
  publish(params: PublishParams): Promise<PublishResult>;
  CDN(target: string | ArrayBuffer | ArrayBufferView | Blob | { type: 'filePath'; filePath: string }): CDNField;
}

/** The default client; `new cloud.Cloud(options)` makes others, as `new wx.cloud.Cloud` does. */
export declare const cloud: Cloud & { Cloud: typeof Cloud };
/** `wx.cloud` for page code written for WeChat. */
export declare const wx: { cloud: typeof cloud };
export declare const VERSION: string;
export default cloud;
