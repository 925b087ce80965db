import { describe, expect, it } from 'vitest';
import { isExists, isNotFound, KernelError } from '../../../../shared/kernel/errors.js';

describe('KernelError', () => {
  it('callers decide on the code, not on the words', () => {
    expect(isNotFound(new KernelError('gone', { code: 'ENODEV' }))).toBe(true);
    expect(isExists(new KernelError('Cannot find device', { code: 'EEXIST' }))).toBe(true);
    expect(isNotFound(new KernelError('File exists', { code: 'EPERM' }))).toBe(false);
  });

  it('non-kernel errors are neither', () => {
    expect(isNotFound(new Error('Cannot find device'))).toBe(false);
    expect(isExists('File exists')).toBe(false);
  });

});
