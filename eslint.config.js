// Lint configuration: ESLint's and typescript-eslint's recommended rules over src, test and bench.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test/vectors/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Parsers of signed notes and checkpoints reject control characters on purpose.
      'no-control-regex': 'off',
    },
  },
  { files: ['bin/*.js'], languageOptions: { globals: { process: 'readonly' } } },
);
