// CniError is the only error that crosses the plugin boundary: runPlugin prints it as
// {code,msg,details} on stdout and exits 1. Any other thrown error becomes code 999 (ErrInternal),
// as skel's "don't wrap Error in Error" does. Codes are those of the CNI spec and containernetworking/cni.
export const CniErrorCode = {
  Unknown: 0,
  IncompatibleCniVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironmentVariables: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  InvalidNetNs: 8,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  Internal: 999,
} as const;

export type CniErrorCodeValue = (typeof CniErrorCode)[keyof typeof CniErrorCode] | number;

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: CniErrorCodeValue,
    msg: string,
    readonly details: string = '',
    opts?: ErrorOptions,
  ) {
    super(msg, opts);
  }

  /** Go's types.Error marshalled: `details` omitted when empty, no cniVersion key. */
  toJSON(): { code: number; msg: string; details?: string } {
    return this.details ? { code: this.code, msg: this.message, details: this.details } : { code: this.code, msg: this.message };
  }
}
