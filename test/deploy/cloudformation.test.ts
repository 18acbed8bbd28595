import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, type Tags } from 'yaml';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { releaseTableDefinition, releaseTableTimeToLive } from '../../src/state/dynamodb-release-table.js';
import { CI_READABLE_ATTRIBUTES } from '../../src/state/release-outcome.js';
import { controlPk } from '../../src/state/dynamodb-control.js';

// deploy/cloudformation.yml checked without AWS: the table is the one the store's code defines, the
// queue has its dead-letter queue, and the worker's IAM policy allows exactly the AWS calls the worker's
// code makes (found by scanning src/ for `new XxxCommand(`), with no wildcard actions.

const root = fileURLToPath(new URL('../../', import.meta.url));

// ---- the template, with CloudFormation's short-form tags read as their long forms ----

const INTRINSICS = ['Ref', 'GetAtt', 'Sub', 'Join', 'Select', 'Split', 'If', 'Equals', 'Not', 'And', 'Or', 'FindInMap', 'Base64', 'Cidr', 'GetAZs', 'ImportValue', 'Condition'];
const longName = (name: string) => (name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`);
const cloudFormationTags: Tags = INTRINSICS.flatMap((name) => [
  { tag: `!${name}`, resolve: (value: string) => ({ [longName(name)]: name === 'GetAtt' ? value.split('.') : value }) },
  { tag: `!${name}`, collection: 'seq' as const, resolve: (seq: { toJSON(): unknown }) => ({ [longName(name)]: seq.toJSON() }) },
  { tag: `!${name}`, collection: 'map' as const, resolve: (map: { toJSON(): unknown }) => ({ [longName(name)]: map.toJSON() }) },
]);

interface Resource {
  Type: string;
  Properties: Record<string, any>;
  DeletionPolicy?: string;
  Condition?: string;
}
interface Template {
  Parameters: Record<string, { Type: string; Default?: unknown; AllowedPattern?: string }>;
  Conditions: Record<string, unknown>;
  Resources: Record<string, Resource>;
  Outputs: Record<string, { Value: unknown; Condition?: string }>;
}

const template = parse(readFileSync(join(root, 'deploy/cloudformation.yml'), 'utf8'), { customTags: cloudFormationTags }) as Template;

const resourcesOfType = (type: string) => Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  NotAction?: unknown;
  NotResource?: unknown;
  Condition?: unknown;
}
const statementsOf = (policy: string): Statement[] => template.Resources[policy]!.Properties.PolicyDocument.Statement as Statement[];
const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
const actionsOf = (policy: string) => new Set(statementsOf(policy).flatMap((statement) => list(statement.Action)));
const statementWith = (policy: string, action: string) => statementsOf(policy).find((statement) => list(statement.Action).includes(action));

// ---- the AWS calls the code makes ----

/** The IAM prefix of each AWS SDK client package the code uses. */
const SERVICE_OF_PACKAGE: Record<string, string> = {
  '@aws-sdk/client-sqs': 'sqs',
  '@aws-sdk/client-ec2': 'ec2',
  '@aws-sdk/client-elastic-load-balancing': 'elasticloadbalancing',
  '@aws-sdk/client-elastic-load-balancing-v2': 'elasticloadbalancing',
  '@aws-sdk/client-auto-scaling': 'autoscaling',
  '@aws-sdk/client-cloudwatch': 'cloudwatch',
  '@aws-sdk/client-dynamodb': 'dynamodb',
  '@aws-sdk/client-ssm': 'ssm',
  '@aws-sdk/client-secrets-manager': 'secretsmanager',
  '@aws-sdk/client-ecr': 'ecr',
};

/** lib-dynamodb's document commands and the DynamoDB operations they are. */
const DOCUMENT_COMMANDS: Record<string, string> = {
  GetCommand: 'GetItem',
  PutCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  QueryCommand: 'Query',
  ScanCommand: 'Scan',
  BatchGetCommand: 'BatchGetItem',
  BatchWriteCommand: 'BatchWriteItem',
  TransactGetCommand: 'TransactGetItems',
  TransactWriteCommand: 'TransactWriteItems',
};

/** Modules whose `new XxxCommand(` is not an AWS call. */
const NOT_AWS = new Set(['commander']);

/** Code in src/ whose AWS calls are not the worker's, and who makes them instead. */
const NOT_THE_WORKER: Record<string, string> = {
  'src/cli/enqueue.ts': 'CI enqueues release requests: the CI policy',
  'src/cli/queue-watch.ts': 'enqueue --wait looks at the request and dead-letter queues: the CI policy',
  'src/state/dynamodb-release-table.ts': 'creates the table for tests and the local fleet; in AWS this template does',
};

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * The IAM actions one operation needs. A transaction needs those of the items it holds (DynamoDB
 * authorises each: PutItem, UpdateItem, DeleteItem, ConditionCheckItem), read from the file's
 * TransactItems keys; an SQS batch call, the action it batches.
 */
function iamActions(service: string, operation: string, source: string): string[] {
  if (operation === 'TransactWriteItems') {
    const kinds = new Set([...source.matchAll(/\b(ConditionCheck|Put|Update|Delete)\s*:/g)].map((match) => match[1]!));
    assert.ok(kinds.size > 0, 'a transaction whose items the scan cannot find');
    return [...kinds].map((kind) => `dynamodb:${kind === 'ConditionCheck' ? 'ConditionCheckItem' : `${kind}Item`}`);
  }
  if (operation === 'TransactGetItems') return ['dynamodb:GetItem'];
  // SQS's batch calls have no permission of their own: SendMessage, DeleteMessage and
  // ChangeMessageVisibility grant their batch versions (SQS Developer Guide, "Amazon SQS batch actions").
  if (service === 'sqs' && ['SendMessageBatch', 'DeleteMessageBatch', 'ChangeMessageVisibilityBatch'].includes(operation)) return [`sqs:${operation.replace(/Batch$/, '')}`];
  return [`${service}:${operation}`];
}

interface Call {
  readonly file: string;
  readonly command: string;
  readonly actions: string[];
}

function awsCalls(): Call[] {
  const calls: Call[] = [];
  for (const path of sourceFiles(join(root, 'src'))) {
    const source = readFileSync(path, 'utf8');
    const file = relative(root, path);
    const origin = new Map<string, string>();
    for (const match of source.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*'([^']+)'/g)) {
      for (const name of match[1]!.split(',')) {
        const local = name.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!.trim();
        if (local) origin.set(local, match[2]!);
      }
    }
    for (const match of source.matchAll(/new\s+([A-Za-z0-9]*Command)\s*\(/g)) {
      const command = match[1]!;
      const module = origin.get(command);
      assert.ok(module, `${file}: new ${command}( comes from no import the scan can see`);
      if (NOT_AWS.has(module)) continue;
      let actions: string[];
      if (module === '@aws-sdk/lib-dynamodb') {
        const operation = DOCUMENT_COMMANDS[command];
        assert.ok(operation, `${file}: lib-dynamodb's ${command} is not in DOCUMENT_COMMANDS`);
        actions = iamActions('dynamodb', operation, source);
      } else {
        const service = SERVICE_OF_PACKAGE[module];
        assert.ok(service, `${file}: ${command} from ${module}: add the package's IAM prefix to SERVICE_OF_PACKAGE`);
        actions = iamActions(service, command.replace(/Command$/, ''), source);
      }
      calls.push({ file, command, actions });
    }
  }
  return calls;
}

const calls = awsCalls();
const actionsNeeded = (files: (file: string) => boolean) => new Set(calls.filter((call) => files(call.file)).flatMap((call) => call.actions));
const sorted = (set: Set<string>) => [...set].sort();

describe('deploy/cloudformation.yml', () => {
  it('declares the release table exactly as createReleaseTable makes it: keys, indexes, billing, TTL', () => {
    const [[, table]] = resourcesOfType('AWS::DynamoDB::Table') as [[string, Resource]];
    const definition = releaseTableDefinition('unused');
    const byName = <T extends { AttributeName?: string; IndexName?: string }>(items: T[]) => [...items].sort((a, b) => (a.AttributeName ?? a.IndexName)!.localeCompare((b.AttributeName ?? b.IndexName)!));
    assert.deepEqual(table.Properties.TableName, { Ref: 'TableName' });
    assert.equal(template.Parameters.TableName?.Type, 'String');
    assert.equal(table.Properties.BillingMode, definition.BillingMode);
    assert.deepEqual(table.Properties.KeySchema, definition.KeySchema);
    assert.deepEqual(byName(table.Properties.AttributeDefinitions), byName(definition.AttributeDefinitions!));
    assert.deepEqual(byName(table.Properties.GlobalSecondaryIndexes), byName(definition.GlobalSecondaryIndexes!));
    assert.deepEqual(table.Properties.TimeToLiveSpecification, releaseTableTimeToLive);
    assert.equal(table.DeletionPolicy, 'Retain', 'deleting the stack never deletes release state');
  });

  it('gives the release queue a dead-letter queue through a redrive policy', () => {
    const queue = template.Resources.ReleaseQueue!;
    const deadLetter = template.Resources.DeadLetterQueue!;
    assert.equal(queue.Type, 'AWS::SQS::Queue');
    assert.equal(deadLetter.Type, 'AWS::SQS::Queue');
    assert.deepEqual(queue.Properties.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] }, maxReceiveCount: { Ref: 'MaxReceiveCount' } });
    assert.ok(Number(template.Parameters.MaxReceiveCount?.Default) >= 1);
    // SQS keeps a dead-lettered message only until its first enqueue time plus the DLQ's retention.
    assert.equal(deadLetter.Properties.MessageRetentionPeriod, 1209600);
    assert.ok(Number(template.Parameters.MessageRetentionSeconds?.Default) <= 1209600);
  });

  it('gives the worker exactly the AWS calls its code makes', () => {
    const worker = actionsNeeded((file) => !(file in NOT_THE_WORKER));
    for (const expected of ['sqs:ReceiveMessage', 'ec2:DescribeInstances', 'dynamodb:PutItem', 'dynamodb:ConditionCheckItem', 'cloudwatch:PutAlarmMuteRule']) {
      assert.ok(worker.has(expected), `the scan finds ${expected}: it reads the code`);
    }
    const granted = actionsOf('WorkerPolicy');
    // The hosts' engines pull from ECR with the worker's token: ECR authorises those calls as the worker's.
    const byTheToken = new Set(['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability']);
    const missing = sorted(worker).filter((action) => !granted.has(action));
    const unused = sorted(granted).filter((action) => !worker.has(action) && !byTheToken.has(action));
    assert.deepEqual({ missing, unused }, { missing: [], unused: [] }, 'the worker policy allows exactly what src/ calls');
  });

  it('gives CI what the enqueue command calls, and reading a release\'s result', () => {
    const ci = actionsNeeded((file) => file === 'src/cli/enqueue.ts' || file === 'src/cli/enqueue-send.ts' || file === 'src/cli/queue-watch.ts');
    assert.deepEqual(sorted(ci), ['sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:SendMessage']);
    assert.deepEqual(sorted(actionsOf('CiPolicy')), sorted(new Set([...ci, 'dynamodb:GetItem'])));
    assert.deepEqual(statementWith('CiPolicy', 'sqs:SendMessage')!.Resource, { 'Fn::GetAtt': ['ReleaseQueue', 'Arn'] }, 'CI sends to the request queue only');
    assert.deepEqual(statementWith('CiPolicy', 'sqs:GetQueueAttributes')!.Resource, { 'Fn::GetAtt': ['ReleaseQueue', 'Arn'] });
    for (const action of ['sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility']) {
      assert.deepEqual(statementWith('CiPolicy', action)!.Resource, { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] }, `${action}: CI reads only the dead-letter queue, never the requests`);
    }
    assert.ok(!actionsOf('CiPolicy').has('sqs:DeleteMessage'), 'CI never deletes a message');
    const read = statementWith('CiPolicy', 'dynamodb:GetItem')!;
    assert.deepEqual(read.Resource, { 'Fn::GetAtt': ['ReleaseTable', 'Arn'] });
    assert.deepEqual(
      read.Condition,
      {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['release#*'] },
        'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...CI_READABLE_ATTRIBUTES] },
        StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
      },
      'release items only, not the leases; of them only what enqueue --wait reads (the outcome), asked for by name',
    );
    assert.ok(!CI_READABLE_ATTRIBUTES.includes('record' as never), 'the record (plan, container spec and environment) is not readable by CI');
  });

  it('gives ops reading the release state and the fleet as status, history, show and hosts read them, and nothing that writes', () => {
    const granted = actionsOf('OpsReadPolicy');
    // What the ops commands' reads make (the stores' reads, observe-hosts' EC2 and ELB reads, the target's resolution).
    for (const action of ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'ec2:DescribeInstances', 'autoscaling:DescribeAutoScalingGroups', 'cloudwatch:DescribeAlarms']) assert.ok(granted.has(action), action);
    for (const action of granted) assert.match(action, /:(Describe|Get|BatchGet|Query)/, `ops reading writes nothing: ${action}`);
    const elbReads = [...actionsOf('WorkerPolicy')].filter((a) => a.startsWith('elasticloadbalancing:Describe'));
    assert.deepEqual(sorted(new Set([...granted].filter((a) => a.startsWith('elasticloadbalancing:')))), elbReads.sort(), 'hosts reads the load balancers as the worker does');
    assert.deepEqual(statementWith('OpsReadPolicy', 'dynamodb:GetItem')!.Resource, [{ 'Fn::GetAtt': ['ReleaseTable', 'Arn'] }, { 'Fn::Sub': '${ReleaseTable.Arn}/index/*' }]);
  });

  it('gives ops steering the put of control items alone: what the control store writes, and no command writes a release', () => {
    assert.deepEqual(sorted(actionsNeeded((file) => file === 'src/state/dynamodb-control.ts')), ['dynamodb:GetItem', 'dynamodb:PutItem'], 'a control write is a conditional put');
    assert.deepEqual(sorted(actionsOf('OpsSteerPolicy')), ['dynamodb:PutItem']);
    const put = statementWith('OpsSteerPolicy', 'dynamodb:PutItem')!;
    assert.deepEqual(put.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['control#*'] } }, 'control items only: never a release, a summary or a lease');
    assert.equal(controlPk('data/ingest/staging').startsWith('control#'), true, 'the control items are what the policy names');
    for (const path of sourceFiles(join(root, 'src/cli'))) {
      assert.doesNotMatch(readFileSync(path, 'utf8'), /\.(claim|save)\(/, `${relative(root, path)}: the commands write requests, never release records`);
    }
  });

  it('gives CI that promotes the target summaries alone, as enqueue --promote-from reads them', () => {
    assert.deepEqual(sorted(actionsOf('CiPromotePolicy')), ['dynamodb:BatchGetItem', 'dynamodb:GetItem']);
    const read = statementWith('CiPromotePolicy', 'dynamodb:GetItem')!;
    assert.deepEqual(read.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['target#*', 'target-list'] } }, 'the summaries, never a release record or a lease');
    assert.match(readFileSync(join(root, 'src/cli/promote-from.ts'), 'utf8'), /targetSummaries\(\)/, 'promote-from reads the summaries');
    assert.match(readFileSync(join(root, 'docs/ci.md'), 'utf8'), /CiPromotePolicy/, 'docs/ci.md names the policy');
  });

  it('scopes the worker\'s queue and table calls to the stack\'s own queues and table', () => {
    for (const action of ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage']) {
      assert.deepEqual(statementWith('WorkerPolicy', action)!.Resource, { 'Fn::GetAtt': ['ReleaseQueue', 'Arn'] }, action);
    }
    assert.deepEqual(statementWith('WorkerPolicy', 'sqs:SendMessage')!.Resource, { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] }, 'the worker sends only refusals, to the DLQ');
    for (const action of [...actionsOf('WorkerPolicy')].filter((a) => a.startsWith('dynamodb:'))) {
      assert.deepEqual(statementWith('WorkerPolicy', action)!.Resource, [{ 'Fn::GetAtt': ['ReleaseTable', 'Arn'] }, { 'Fn::Sub': '${ReleaseTable.Arn}/index/*' }], action);
    }
  });

  it('allows no wildcard action, and only Allow statements with Action and Resource', () => {
    for (const [name] of resourcesOfType('AWS::IAM::ManagedPolicy')) {
      for (const statement of statementsOf(name)) {
        assert.equal(statement.Effect, 'Allow', `${name} ${statement.Sid}`);
        assert.equal(statement.NotAction, undefined);
        assert.equal(statement.NotResource, undefined);
        assert.ok(statement.Resource !== undefined, `${name} ${statement.Sid} names its resources`);
        for (const action of list(statement.Action)) assert.match(action, /^[a-z0-9-]+:[A-Za-z0-9]+$/, `${name} ${statement.Sid}: ${action}`);
      }
    }
    assert.deepEqual(resourcesOfType('AWS::IAM::ManagedPolicy').map(([name]) => name).sort(), ['CiPolicy', 'CiPromotePolicy', 'OpsReadPolicy', 'OpsSteerPolicy', 'WorkerPolicy']);
  });

  it('refers only to its own parameters and resources, and outputs what the worker\'s and CI\'s configuration need', () => {
    const known = new Set([...Object.keys(template.Parameters), ...Object.keys(template.Resources)]);
    const unknown: string[] = [];
    const visit = (value: unknown): void => {
      if (Array.isArray(value)) return value.forEach(visit);
      if (value === null || typeof value !== 'object') return;
      for (const [key, inner] of Object.entries(value)) {
        if (key === 'Ref' && typeof inner === 'string' && !inner.startsWith('AWS::') && !known.has(inner)) unknown.push(inner);
        if (key === 'Fn::GetAtt' && !known.has(String((inner as string[])[0]))) unknown.push(String((inner as string[])[0]));
        if (key === 'Fn::Sub' && typeof inner === 'string') {
          for (const [, name] of inner.matchAll(/\$\{([^}!]+)\}/g)) if (!name!.startsWith('AWS::') && !known.has(name!.split('.')[0]!)) unknown.push(name!);
        }
        visit(inner);
      }
    };
    visit(template.Resources);
    visit(template.Outputs);
    visit(template.Conditions);
    assert.deepEqual(unknown, []);
    const conditionsUsed = [
      ...Object.values(template.Resources).map((resource) => resource.Condition),
      ...Object.values(template.Outputs).map((output) => output.Condition),
    ].filter((name): name is string => name !== undefined);
    for (const name of conditionsUsed) assert.ok(name in template.Conditions, `condition ${name} is declared`);
    assert.deepEqual(Object.keys(template.Outputs).sort(), [
      'BastionInstanceProfileArn',
      'BastionInstanceProfileName',
      'BastionLaunchTemplateId',
      'BastionRoleArn',
      'BastionSecurityGroupId',
      'CiPolicyArn',
      'CiPromotePolicyArn',
      'CiRoleArn',
      'DeadLetterQueueArn',
      'DeadLetterQueueUrl',
      'HostSecurityGroupId',
      'OpsReadPolicyArn',
      'OpsSteerPolicyArn',
      'QueueArn',
      'QueueUrl',
      'ReleaseTableArn',
      'ReleaseTableName',
      'WorkerPolicyArn',
    ]);
    assert.deepEqual(template.Outputs.QueueUrl!.Value, { Ref: 'ReleaseQueue' }, 'Ref of a queue is its URL');
    assert.deepEqual(template.Outputs.ReleaseTableName!.Value, { Ref: 'ReleaseTable' });
  });

  it('gives the bastion an instance role that EC2 alone assumes, holding the worker policy, and an instance profile of it', () => {
    const role = template.Resources.BastionRole!;
    assert.equal(role.Type, 'AWS::IAM::Role');
    assert.equal(role.Condition, undefined, 'always made: every worker needs it');
    assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement, [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }]);
    assert.deepEqual(role.Properties.ManagedPolicyArns, [{ Ref: 'WorkerPolicy' }], 'the worker policy and nothing else');
    // Beside it, only what the host key collector of docs/install.md calls (the worker never does), and
    // the refusal of credentials IMDSv1 handed out (the next test).
    assert.deepEqual(
      (role.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>).flatMap((policy) => policy.PolicyDocument.Statement).filter((statement) => statement.Effect === 'Allow'),
      [{ Sid: 'ReadHostKeysFromConsoles', Effect: 'Allow', Action: ['ec2:GetConsoleOutput'], Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*' } }],
    );
    assert.ok(!calls.some((call) => call.actions.includes('ec2:GetConsoleOutput')), 'the worker itself does not read consoles');
    const profile = template.Resources.BastionInstanceProfile!;
    assert.equal(profile.Type, 'AWS::IAM::InstanceProfile');
    assert.deepEqual(profile.Properties.Roles, [{ Ref: 'BastionRole' }]);
    assert.deepEqual(template.Outputs.BastionInstanceProfileName!.Value, { Ref: 'BastionInstanceProfile' });
  });

  it('launches the bastion with IMDSv2 alone and a hop limit of 1, refuses its role\'s credentials when IMDSv1 handed them out, and docs/install.md says why', () => {
    // IAM and EC2 evaluate these on AWS (moto does not): what is checked here is the document.
    const launch = template.Resources.BastionLaunchTemplate!;
    assert.equal(launch.Type, 'AWS::EC2::LaunchTemplate');
    assert.equal(launch.Condition, undefined, 'always made, as the role is');
    const data = launch.Properties.LaunchTemplateData;
    assert.deepEqual(data.MetadataOptions, { HttpEndpoint: 'enabled', HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'disabled' });
    assert.deepEqual(data.IamInstanceProfile, { Arn: { 'Fn::GetAtt': ['BastionInstanceProfile', 'Arn'] } });
    assert.deepEqual(data.SecurityGroupIds, { 'Fn::If': ['MakeSecurityGroups', [{ 'Fn::GetAtt': ['BastionSecurityGroup', 'GroupId'] }], { Ref: 'AWS::NoValue' }] });
    assert.deepEqual(template.Outputs.BastionLaunchTemplateId!.Value, { Ref: 'BastionLaunchTemplate' });
    assert.deepEqual(resourcesOfType('AWS::EC2::LaunchTemplate').map(([name]) => name), ['BastionLaunchTemplate']);
    assert.deepEqual(resourcesOfType('AWS::EC2::Instance'), [], 'no instance the template would launch otherwise');

    const statements = (template.Resources.BastionRole!.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>).flatMap((policy) => policy.PolicyDocument.Statement);
    assert.deepEqual(
      statements.filter((statement) => statement.Effect === 'Deny'),
      [{ Sid: 'RefuseCredentialsDeliveredByImdsV1', Effect: 'Deny', Action: '*', Resource: '*', Condition: { NumericLessThan: { 'ec2:RoleDelivery': '2.0' } } }],
    );

    const install = readFileSync(join(root, 'docs/install.md'), 'utf8');
    for (const said of ['BastionLaunchTemplateId', 'IMDSv2', 'hop limit of 1', 'aws ec2 modify-instance-metadata-options', '--http-tokens required', '--http-put-response-hop-limit 1', '--network host']) {
      assert.ok(install.includes(said), `docs/install.md says ${said}`);
    }
  });

  it('lets CI\'s role be assumed by one GitHub repository through OIDC, or by a named AWS role, and gives it the CI policy alone', () => {
    const role = template.Resources.CiRole!;
    assert.equal(role.Type, 'AWS::IAM::Role');
    assert.equal(role.Condition, 'MakeCiRole');
    assert.deepEqual(template.Conditions.MakeCiRole, { 'Fn::Or': [{ Condition: 'TrustGitHub' }, { Condition: 'TrustCiPrincipal' }] });
    assert.deepEqual(role.Properties.ManagedPolicyArns, [{ Ref: 'CiPolicy' }]);
    assert.equal(role.Properties.Policies, undefined);
    const [github, agents] = role.Properties.AssumeRolePolicyDocument.Statement as Array<{ 'Fn::If': [string, Record<string, unknown>, unknown] }>;
    assert.deepEqual(github!['Fn::If'], [
      'TrustGitHub',
      {
        Sid: 'GitHubActions',
        Effect: 'Allow',
        Principal: { Federated: { Ref: 'GitHubOidcProviderArn' } },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' },
          StringLike: { 'token.actions.githubusercontent.com:sub': { 'Fn::Sub': 'repo:${GitHubRepository}:${GitHubSubject}' } },
        },
      },
      { Ref: 'AWS::NoValue' },
    ]);
    assert.deepEqual(agents!['Fn::If'], ['TrustCiPrincipal', { Sid: 'CiAgents', Effect: 'Allow', Principal: { AWS: { Ref: 'CiPrincipalArn' } }, Action: 'sts:AssumeRole' }, { Ref: 'AWS::NoValue' }]);
    // The subject names one repository: a wildcard owner or name would let any repository's workflow in.
    const repository = new RegExp(template.Parameters.GitHubRepository!.AllowedPattern!);
    for (const good of ['acme/ingest', 'acme/data.ingest', '']) assert.match(good, repository);
    for (const bad of ['*', 'acme/*', '*/ingest', 'acme', 'acme/ingest/x']) assert.doesNotMatch(bad, repository, bad);
    const provider = new RegExp(template.Parameters.GitHubOidcProviderArn!.AllowedPattern!);
    assert.match('arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com', provider);
    assert.doesNotMatch('arn:aws:iam::123456789012:oidc-provider/gitlab.com', provider, 'GitHub\'s provider only: the conditions name its claims');
  });

  it('opens the hosts to the bastion alone, on the SSH and probe ports of the configuration, and the bastion out to them and to HTTPS', () => {
    const groups = resourcesOfType('AWS::EC2::SecurityGroup').map(([name]) => name).sort();
    assert.deepEqual(groups, ['BastionSecurityGroup', 'HostSecurityGroup']);
    const ingress = resourcesOfType('AWS::EC2::SecurityGroupIngress').map(([, rule]) => rule.Properties);
    const egress = resourcesOfType('AWS::EC2::SecurityGroupEgress').map(([, rule]) => rule.Properties);
    const portsOf = (rules: Array<Record<string, any>>) => rules.map((rule) => (rule.FromPort as { Ref: string }).Ref).sort();
    assert.deepEqual(portsOf(ingress), ['HealthPort', 'SmokePort', 'SshPort']);
    assert.deepEqual(portsOf(egress), ['HealthPort', 'SmokePort', 'SshPort']);
    for (const rule of ingress) {
      assert.deepEqual(rule.GroupId, { 'Fn::GetAtt': ['HostSecurityGroup', 'GroupId'] });
      assert.deepEqual(rule.SourceSecurityGroupId, { 'Fn::GetAtt': ['BastionSecurityGroup', 'GroupId'] }, 'from the bastion only, never a CIDR');
      assert.equal(rule.IpProtocol, 'tcp');
      assert.deepEqual(rule.ToPort, rule.FromPort, 'one port a rule');
    }
    for (const rule of egress) {
      assert.deepEqual(rule.GroupId, { 'Fn::GetAtt': ['BastionSecurityGroup', 'GroupId'] });
      assert.deepEqual(rule.DestinationSecurityGroupId, { 'Fn::GetAtt': ['HostSecurityGroup', 'GroupId'] });
      assert.deepEqual(rule.ToPort, rule.FromPort);
    }
    const bastion = template.Resources.BastionSecurityGroup!.Properties;
    assert.equal(bastion.SecurityGroupIngress, undefined, 'nothing reaches the bastion through this group');
    assert.deepEqual(
      (bastion.SecurityGroupEgress as Array<Record<string, unknown>>).map(({ IpProtocol, FromPort, ToPort, CidrIp }) => ({ IpProtocol, FromPort, ToPort, CidrIp })),
      [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0' }],
      'listing egress replaces the default allow-all: HTTPS out (AWS APIs, chat, GitHub), the hosts by the rules above',
    );
    assert.equal(template.Resources.HostSecurityGroup!.Properties.SecurityGroupIngress, undefined);
    // The ports' defaults are the example configuration's: ssh.port (its default) and the health probe's port.
    const example = parseWorkerConfig(readFileSync(join(root, 'deploy/worker.example.yml'), 'utf8'), 'deploy/worker.example.yml');
    assert.equal(template.Parameters.SshPort!.Default, example.ssh!.port);
    assert.equal(template.Parameters.HealthPort!.Default, example.releases[0]!.rollout!.health.port);
    assert.equal(template.Parameters.SmokePort!.Default, 0, 'the example\'s smoke check uses the health port: no rule of its own');
    assert.equal(example.releases[0]!.rollout!.smoke!.port, example.releases[0]!.rollout!.health.port);
  });
});
