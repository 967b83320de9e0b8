import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { SftpError, SftpStatus } from '../../src/remote/sftp-session.js';
import { FsError, fromSftpError, STATUS_TO_ERRNO } from '../../src/vfs/errors.js';

describe('SFTP status to errno', () => {
  it.each([
    [SftpStatus.noSuchFile, 'ENOENT'],
    [SftpStatus.permissionDenied, 'EACCES'],
    [SftpStatus.failure, 'EIO'],
    [SftpStatus.badMessage, 'EINVAL'],
    [SftpStatus.noConnection, 'ENOTCONN'],
    [SftpStatus.connectionLost, 'ENOTCONN'],
    [SftpStatus.opUnsupported, 'ENOSYS'],
    [SftpStatus.eof, 'EIO'],
  ] as const)('status %i is %s', (status, code) => {
    expect(STATUS_TO_ERRNO[status]).toBe(code);
    const error = fromSftpError(new SftpError('open', '/srv/x', status, 'server said no'), 'open', 'x');
    expect(error).toBeInstanceOf(FsError);
    expect(error.code).toBe(code);
    expect(error.errno).toBe((constants.errno as Record<string, number>)[code]);
    expect(error.message).toMatch(/^open x: /);
  });

  it('an unanswered request is ETIMEDOUT, a closed channel ENOTCONN, anything else EIO', () => {
    expect(fromSftpError(new SftpError('read', 'f', undefined, 'no answer within 30000 ms'), 'read', 'f').code).toBe('ETIMEDOUT');
    expect(fromSftpError(new SftpError('read', 'f', undefined, 'the SFTP channel closed'), 'read', 'f').code).toBe('ENOTCONN');
    expect(fromSftpError(new TypeError('bug'), 'read', 'f').code).toBe('EIO');
  });

  it('keeps an FsError as it is', () => {
    const original = new FsError('EEXIST', 'mkdir', 'd');
    expect(fromSftpError(original, 'other', 'x')).toBe(original);
  });
});
