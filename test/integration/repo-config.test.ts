import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKFLOW = join(ROOT, '.github', 'workflows', 'ci.yml');
const VALIDATOR = join(ROOT, 'node_modules', '@action-validator', 'cli', 'cli.mjs');

function validate(file: string) {
  return spawnSync(process.execPath, [VALIDATOR, file], { encoding: 'utf8' });
}

function shellScripts(): string[] {
  const scripts = [join(ROOT, '.ci', 'run')];
  for (const dir of ['scripts', 'bundle', 'platform']) {
    const walk = (path: string): void => {
      for (const name of readdirSync(path)) {
        const full = join(path, name);
        if (statSync(full).isDirectory()) walk(full);
        else if (name.endsWith('.sh') || readFileSync(full, 'utf8').startsWith('#!/usr/bin/env bash')) scripts.push(full);
      }
    };
    if (existsSync(join(ROOT, dir))) walk(join(ROOT, dir));
  }
  return scripts;
}

describe('CI configuration', () => {
  it('the workflow passes the GitHub Actions schema check', () => {
    const result = validate(WORKFLOW);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('the schema check catches a broken workflow (so the check above means something)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tmount-wf-'));
    try {
      const broken = join(dir, 'ci.yml');
      await writeFile(broken, readFileSync(WORKFLOW, 'utf8').replace('runs-on: macos-14', 'runs_on: macos-14'));
      expect(validate(broken).status).not.toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('has the per-OS matrix: ubuntu full tests, macOS, Windows and FreeBSD build + unit tests', () => {
    const text = readFileSync(WORKFLOW, 'utf8');
    expect(text).toMatch(/runs-on: ubuntu-[\s\S]*?- run: npm test/);
    expect(text).toMatch(/runs-on: macos-\d+[\s\S]*?npm run build[\s\S]*?npm run test:unit/);
    expect(text).toMatch(/runs-on: windows-\d+[\s\S]*?npm run build[\s\S]*?npm run test:unit/);
    expect(text).toMatch(/uses: vmactions\/freebsd-vm@v1[\s\S]*?npm run test:unit/);
    for (const [, action] of text.matchAll(/uses: (\S+)/g)) expect(action).toMatch(/@v\d+$/);
  });

  it('every shell script passes shellcheck', () => {
    const scripts = shellScripts();
    expect(scripts.length).toBeGreaterThan(0);
    const result = spawnSync('shellcheck', ['--severity=style', ...scripts], { encoding: 'utf8' });
    expect(result.error).toBeUndefined();
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});
